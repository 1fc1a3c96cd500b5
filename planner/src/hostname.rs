//! Hostname rules of Gateway API: normalisation, and the intersection of a route's hostnames
//! with a listener's hostname (a wildcard `*.example.com` matches any name with at least one more
//! label, `foo.example.com` and `foo.bar.example.com`, but not `example.com`).

/// Lower case, no trailing dot.
pub fn normalize(h: &str) -> String {
    h.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `pattern` (possibly a wildcard) matches `host` (a concrete name or a wildcard).
fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(base) => host.ends_with(&format!(".{base}")),
        None => pattern == host,
    }
}

/// The hostnames a route gets on a listener: the route's own names that the listener accepts
/// (the more specific of the two when both are wildcards), or the listener's hostname when the
/// route names none. `None` for the listener means "any hostname".
pub fn intersect(route_hostnames: &[String], listener: Option<&str>) -> Vec<String> {
    let route: Vec<String> = route_hostnames.iter().map(|h| normalize(h)).collect();
    let listener = listener.map(normalize);
    let mut out: Vec<String> = match (route.is_empty(), listener) {
        (true, Some(l)) => vec![l],
        (true, None) => vec![],
        (false, None) => route,
        (false, Some(l)) => route
            .into_iter()
            .filter_map(|r| {
                if covers(&l, &r) {
                    Some(r)
                } else if covers(&r, &l) {
                    Some(l.clone())
                } else {
                    None
                }
            })
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    /// (what, route hostnames, listener hostname, expected).
    type Case<'a> = (&'a str, &'a [&'a str], Option<&'a str>, &'a [&'a str]);

    #[test]
    fn intersects_route_and_listener_hostnames() {
        let cases: &[Case<'_>] = &[
            ("route inherits the listener hostname", &[], Some("a.contoso.com"), &["a.contoso.com"]),
            ("no hostnames anywhere", &[], None, &[]),
            ("listener accepts any hostname", &["x.io", "Y.io."], None, &["x.io", "y.io"]),
            ("exact match", &["a.contoso.com"], Some("a.contoso.com"), &["a.contoso.com"]),
            ("mismatch", &["b.contoso.com"], Some("a.contoso.com"), &[]),
            ("wildcard listener, one label", &["a.contoso.com"], Some("*.contoso.com"), &["a.contoso.com"]),
            ("wildcard listener, two labels", &["a.b.contoso.com"], Some("*.contoso.com"), &["a.b.contoso.com"]),
            ("wildcard listener, apex", &["contoso.com"], Some("*.contoso.com"), &[]),
            ("wildcard route, concrete listener", &["*.contoso.com"], Some("a.contoso.com"), &["a.contoso.com"]),
            ("both wildcards, route narrower", &["*.b.contoso.com"], Some("*.contoso.com"), &["*.b.contoso.com"]),
            ("both wildcards, listener narrower", &["*.contoso.com"], Some("*.b.contoso.com"), &["*.b.contoso.com"]),
            ("lookalike suffix", &["xcontoso.com"], Some("*.contoso.com"), &[]),
            ("some match, some not", &["a.contoso.com", "a.fabrikam.com"], Some("*.contoso.com"), &["a.contoso.com"]),
        ];
        for (what, route, listener, want) in cases {
            assert_eq!(intersect(&v(route), *listener), v(want), "{what}");
        }
    }
}
