//! ARM zone resource ids and the zone membership of hostnames: never panic; a relative name put
//! back together gives the hostname.
#![no_main]
use libfuzzer_sys::fuzz_target;
use routewarden_planner::zone::Zone;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (id, host) = s.split_once('\n').unwrap_or((s, "www.contoso.com"));
    if let Ok(zone) = Zone::parse(id) {
        if let Some(rel) = zone.relative_name(host) {
            let back = if rel == "@" { zone.name.clone() } else { format!("{rel}.{}", zone.name) };
            assert_eq!(back, host);
        }
    }
});
