#![allow(dead_code, clippy::unwrap_used)]
use routewarden_store::*;
use std::path::Path;

pub fn open(dir: &Path) -> Journal {
    testing::open_current(dir, Options::default()).unwrap()
}

pub fn open_with(dir: &Path, options: Options) -> Journal {
    testing::open_current(dir, options).unwrap()
}

pub fn t(ms: i64) -> Time {
    Time::from_millis(ms)
}

pub fn rs(zone: &str, name: &str) -> RecordSetKey {
    RecordSetKey { zone: zone.into(), name: name.into(), record_type: RecordType::A }
}

pub fn desired(ip: &str) -> DesiredRecordSet {
    DesiredRecordSet {
        ttl: 300,
        targets: vec![ip.into()],
        owner: "cluster/edns".into(),
        sources: vec![],
        updated_at: t(0),
    }
}
