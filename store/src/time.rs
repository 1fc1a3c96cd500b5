//! Time as the journal stores it: milliseconds since the Unix epoch. The journal never reads a
//! clock; every operation that needs "now" takes it from the caller, so tests control time.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Time(pub i64);

impl Time {
    pub const fn from_millis(ms: i64) -> Self {
        Time(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The wall clock, for callers at the edge (the daemon's main loop, the CLI). Logic takes a
    /// `Time` parameter instead of calling this.
    pub fn now() -> Self {
        Time(jiff::Timestamp::now().as_millisecond())
    }

    pub fn plus(self, d: std::time::Duration) -> Self {
        Time(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    pub fn minus(self, d: std::time::Duration) -> Self {
        Time(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// How long ago `self` was, seen from `now` (zero if in the future).
    pub fn age(self, now: Time) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(now.0.saturating_sub(self.0)).unwrap_or(0))
    }

    pub fn to_timestamp(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Order-preserving big-endian bytes (sign bit flipped), for use inside keys.
    pub(crate) fn key_bytes(self) -> [u8; 8] {
        ((self.0 as u64) ^ (1 << 63)).to_be_bytes()
    }
}

impl From<jiff::Timestamp> for Time {
    fn from(t: jiff::Timestamp) -> Self {
        Time(t.as_millisecond())
    }
}

impl fmt::Display for Time {
    /// RFC 3339 in UTC, to the second.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ts = self.to_timestamp();
        write!(f, "{}", ts.round(jiff::Unit::Second).unwrap_or(ts))
    }
}
