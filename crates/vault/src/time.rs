//! Timestamps of key states and events, and the cryptoperiod policy.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant with one-second resolution, written as RFC 3339 (`2026-11-22T05:42:00Z`)
/// in every vault file.
///
/// One second is enough to say since when a key is in a state, and it keeps the files short
/// and the same on every platform. The order of events is given by their sequence numbers,
/// not by their timestamps.
///
/// ```
/// use polyseal_vault::Timestamp;
/// let t = Timestamp::parse("2026-11-22T05:42:00Z").expect("valid");
/// assert_eq!(t.to_string(), "2026-11-22T05:42:00Z");
/// assert_eq!(t.unix_seconds(), 1_795_326_120);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current time, truncated to the second. A clock set before 1970 reads as 1970.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// `time`, truncated to the second. A time before 1970 reads as 1970.
    pub fn from_system_time(time: SystemTime) -> Timestamp {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp(since_epoch.as_secs())
    }

    /// The instant `seconds` after 1970-01-01T00:00:00Z.
    pub fn from_unix_seconds(seconds: u64) -> Timestamp {
        Timestamp(seconds)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(self) -> u64 {
        self.0
    }

    /// Parses the RFC 3339 UTC form written by `Display`, such as `2026-11-22T05:42:00Z`.
    /// Fractional seconds are accepted and dropped.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let time = humantime::parse_rfc3339(text).ok()?;
        Some(Timestamp(time.duration_since(UNIX_EPOCH).ok()?.as_secs()))
    }

    /// The time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }

    /// `self` moved `duration` into the future, whole seconds.
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration.as_secs()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = UNIX_EPOCH + Duration::from_secs(self.0);
        write!(f, "{}", humantime::format_rfc3339_seconds(time))
    }
}

/// How long a key may stay active before it is due for rotation (NIST SP 800-57 part 1 §5.3),
/// in whole days. Recorded in `vault.toml`; the vault reports which keys are past it, and the
/// operator rotates them.
///
/// ```
/// use polyseal_vault::{Cryptoperiod, Timestamp};
/// let period = Cryptoperiod::from_days(365).expect("non-zero");
/// let activated = Timestamp::parse("2026-01-01T00:00:00Z").expect("valid");
/// assert_eq!(period.end(activated).to_string(), "2027-01-01T00:00:00Z");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cryptoperiod {
    days: u32,
}

impl Cryptoperiod {
    /// A cryptoperiod of `days` days; `None` for zero.
    pub fn from_days(days: u32) -> Option<Cryptoperiod> {
        (days > 0).then_some(Cryptoperiod { days })
    }

    /// The length in days.
    pub fn days(self) -> u32 {
        self.days
    }

    /// The length as a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.days) * 86_400)
    }

    /// When a key activated at `activated` reaches the end of its cryptoperiod.
    pub fn end(self, activated: Timestamp) -> Timestamp {
        activated.saturating_add(self.duration())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_whole_seconds() {
        let t = Timestamp::parse("2026-11-22T05:42:00.750Z").expect("fraction accepted");
        assert_eq!(t.to_string(), "2026-11-22T05:42:00Z");
        assert_eq!(
            Timestamp::from_unix_seconds(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(Timestamp::parse("2026-11-22 05:42"), None);
        let later = t.saturating_add(Duration::from_secs(90));
        assert_eq!(later.duration_since(t), Duration::from_secs(90));
        assert_eq!(t.duration_since(later), Duration::ZERO);
    }

    #[test]
    fn a_cryptoperiod_has_at_least_one_day() {
        assert!(Cryptoperiod::from_days(0).is_none());
        assert_eq!(
            Cryptoperiod::from_days(2).map(Cryptoperiod::duration),
            Some(Duration::from_secs(172_800))
        );
    }
}
