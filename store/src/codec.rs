//! The stable value encoding: one format byte, then the value in postcard (whose wire format is
//! frozen since 1.0). The format byte lets a reader refuse bytes it does not understand instead
//! of misreading them. Changing any stored struct means a new schema version, a migration step
//! in `routewarden-migrations`, and a new frozen fixture (a test enforces the fixture).

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};

/// The format byte written in front of every value.
pub const FORMAT: u8 = 1;

pub fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT];
    postcard::to_io(value, &mut out).map_err(|e| Error::Encode { table, detail: e.to_string() })?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            let (value, tail) =
                postcard::take_from_bytes(rest).map_err(|e| Error::Decode { table, detail: e.to_string() })?;
            if tail.is_empty() {
                Ok(value)
            } else {
                Err(Error::Decode { table, detail: format!("{} trailing bytes", tail.len()) })
            }
        }
        Some((other, _)) => Err(Error::Decode { table, detail: format!("unknown format byte {other}") }),
        None => Err(Error::Decode { table, detail: "empty value".into() }),
    }
}

/// Keys are components joined by 0x00; a component may not contain 0x00.
pub fn join_key(what: &'static str, parts: &[&str]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if p.as_bytes().contains(&0) {
            return Err(Error::InvalidKey { what, value: (*p).to_owned(), why: "contains a NUL byte" });
        }
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(p.as_bytes());
    }
    Ok(out)
}

pub fn split_key<const N: usize>(table: &'static str, key: &[u8]) -> Result<[String; N]> {
    let parts: Vec<String> = key
        .split(|b| *b == 0)
        .map(|p| String::from_utf8(p.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Decode { table, detail: format!("key is not UTF-8: {e}") })?;
    parts
        .try_into()
        .map_err(|p: Vec<String>| Error::Decode { table, detail: format!("key has {} parts, want {N}", p.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_format_and_trailing_bytes() {
        let mut bytes = encode("t", &42u32).expect("encode");
        assert_eq!(decode::<u32>("t", &bytes).expect("decode"), 42);
        bytes.push(7);
        assert!(matches!(decode::<u32>("t", &bytes), Err(Error::Decode { .. })));
        bytes[0] = 9;
        assert!(decode::<u32>("t", &bytes).unwrap_err().to_string().contains("unknown format byte 9"));
        assert!(decode::<u32>("t", &[]).is_err());
    }

    #[test]
    fn keys_round_trip_and_refuse_nul() {
        let k = join_key("k", &["a/b", "", "c"]).expect("join");
        assert_eq!(split_key::<3>("t", &k).expect("split"), ["a/b".to_string(), String::new(), "c".into()]);
        assert!(join_key("zone", &["a\0b"]).is_err());
        assert!(split_key::<2>("t", &k).is_err());
    }
}
