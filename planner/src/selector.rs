//! Label selectors: the `key=value` filters of the DNS resources, and the Kubernetes
//! `LabelSelector` (matchLabels + matchExpressions) of a listener's `allowedRoutes.namespaces`.

use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

/// A single `key=value` filter (`filters.gatewayLabels`, `filters.routeAndIngressLabels`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: String,
}

impl LabelFilter {
    /// Parses `key=value` as the anchor's validation does (`^[^=]+=[^=]+$`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() && !v.contains('=') => {
                Ok(LabelFilter { key: k.trim().to_owned(), value: v.trim().to_owned() })
            }
            _ => Err(format!("label filter {s:?} must be a single key=value")),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        labels.get(&self.key) == Some(&self.value)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A Kubernetes LabelSelector. An empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    Operator::In => value.is_some_and(|v| r.values.contains(v)),
                    Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn filters_parse_like_the_anchor() {
        assert_eq!(LabelFilter::parse("zone=c").unwrap(), LabelFilter { key: "zone".into(), value: "c".into() });
        for bad in ["zone", "=c", "zone=", "a=b=c", "", "bad==filter=="] {
            assert!(LabelFilter::parse(bad).is_err(), "{bad}");
        }
        assert!(LabelFilter::parse("zone=c").unwrap().matches(&labels(&[("zone", "c")])));
        assert!(!LabelFilter::parse("zone=c").unwrap().matches(&labels(&[("zone", "a")])));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: labels(&[("team", "web")]),
            match_expressions: vec![
                Requirement { key: "env".into(), operator: Operator::In, values: vec!["prod".into(), "stage".into()] },
                Requirement { key: "legacy".into(), operator: Operator::DoesNotExist, values: vec![] },
            ],
        };
        assert!(sel.matches(&labels(&[("team", "web"), ("env", "prod")])));
        assert!(!sel.matches(&labels(&[("team", "web"), ("env", "dev")])));
        assert!(!sel.matches(&labels(&[("team", "web"), ("env", "prod"), ("legacy", "y")])));
        assert!(!sel.matches(&labels(&[("env", "prod")])));
        assert!(LabelSelector::default().matches(&Labels::new()));
    }
}
