//! Journal values and keys as stored on disk: decoding arbitrary bytes gives a value or an
//! error, never a panic, and a decoded value re-encodes to bytes that decode to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use routewarden_store::codec::{decode, encode, split_key};
use routewarden_store::{AppliedRecordSet, CertVersion, DesiredRecordSet, Event, WorkItem, ZoneReport};

fn round_trip<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = decode::<T>("fuzz", bytes) {
        let again = encode("fuzz", &v).expect("a decoded value encodes");
        assert_eq!(decode::<T>("fuzz", &again).expect("re-encoded bytes decode"), v);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<WorkItem>(data);
    round_trip::<Event>(data);
    round_trip::<DesiredRecordSet>(data);
    round_trip::<AppliedRecordSet>(data);
    round_trip::<CertVersion>(data);
    round_trip::<ZoneReport>(data);
    let _ = split_key::<3>("fuzz", data);
});
