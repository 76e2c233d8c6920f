//! Timestamp identifiers (TIDs), per atproto.com/specs/tid, and a generator for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Error, string_type};

/// The base32-sortable alphabet: ASCII order equals numeric order.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
const LEN: usize = 13;
/// Largest timestamp a TID can carry (53 bits of microseconds, until the year 2255).
const MAX_TIMESTAMP: u64 = (1 << 53) - 1;
const CLOCK_ID_MASK: u64 = (1 << 10) - 1;

/// A syntactically valid TID: 13 characters of base32-sortable whose first character is
/// one of `234567abcdefghij` (so the value fits in 64 bits), e.g. `3jzfcijpj2z2a`.
///
/// The value is a 64-bit integer: top bit zero, 53 bits of microseconds since the UNIX
/// epoch, 10 bits of clock identifier. Ordering of `Tid`s is ordering of those integers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(String);

fn digit(b: u8) -> Option<u64> {
    match b {
        b'2'..=b'7' => Some(u64::from(b - b'2')),
        b'a'..=b'z' => Some(u64::from(b - b'a') + 6),
        _ => None,
    }
}

fn encode(mut value: u64) -> String {
    let mut buf = [b'2'; LEN];
    for slot in buf.iter_mut().rev() {
        // `value & 31` is below 32, so the index is always in bounds.
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    buf.iter().map(|&b| char::from(b)).collect()
}

/// Decodes and checks a TID string.
fn decode(s: &str) -> Result<u64, Error> {
    if s.len() != LEN {
        return Err(Error::Tid("must be exactly 13 characters"));
    }
    let mut value: u64 = 0;
    for (i, b) in s.bytes().enumerate() {
        let d = digit(b).ok_or(Error::Tid(
            "may only contain the characters 234567abcdefghijklmnopqrstuvwxyz",
        ))?;
        if i == 0 && d >= 16 {
            return Err(Error::Tid(
                "first character must be one of 234567abcdefghij",
            ));
        }
        // 4 + 12 * 5 = 64 bits: the first-character check keeps this from overflowing.
        value = (value << 5) | d;
    }
    Ok(value)
}

impl Tid {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Builds a TID from its parts. Bits beyond the 53-bit timestamp and the 10-bit clock
    /// identifier are ignored, so the result always has its top bit zero.
    pub fn from_parts(timestamp_micros: u64, clock_id: u16) -> Tid {
        let value =
            ((timestamp_micros & MAX_TIMESTAMP) << 10) | (u64::from(clock_id) & CLOCK_ID_MASK);
        Tid(encode(value))
    }

    /// The whole 64-bit value.
    pub fn to_u64(&self) -> u64 {
        // Valid by construction; 0 is unreachable.
        decode(&self.0).unwrap_or(0)
    }

    /// Microseconds since the UNIX epoch (everything above the clock identifier; a TID
    /// whose first character is `c`…`j` has the top bit set and yields a value beyond
    /// 53 bits).
    pub fn timestamp_micros(&self) -> u64 {
        self.to_u64() >> 10
    }

    /// The 10-bit clock identifier.
    pub fn clock_id(&self) -> u16 {
        // Masked to 10 bits, so the conversion cannot fail.
        u16::try_from(self.to_u64() & CLOCK_ID_MASK).unwrap_or(0)
    }
}

impl TryFrom<String> for Tid {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        decode(&s)?;
        Ok(Tid(s))
    }
}

string_type!(Tid);

/// Generates TIDs from the current time with a clock identifier fixed at construction.
///
/// Values are strictly increasing for the life of the clock, even if two calls fall in the
/// same microsecond or the system clock steps backwards: the timestamp used is never below
/// the last one plus one. Thread-safe (one atomic). There is deliberately no global
/// instance: whoever needs TIDs owns a clock.
#[derive(Debug)]
pub struct TidClock {
    clock_id: u16,
    /// The timestamp of the last TID handed out.
    last: AtomicU64,
}

impl Default for TidClock {
    /// A clock with a random clock identifier.
    fn default() -> Self {
        TidClock::with_clock_id(rand::random::<u16>())
    }
}

impl TidClock {
    /// A clock with a chosen clock identifier (only its low 10 bits are used).
    pub(crate) fn with_clock_id(clock_id: u16) -> Self {
        TidClock {
            // Masked to 10 bits, so the conversion cannot fail.
            clock_id: u16::try_from(u64::from(clock_id) & CLOCK_ID_MASK).unwrap_or(0),
            last: AtomicU64::new(0),
        }
    }

    /// The next TID: greater than every TID this clock returned before.
    ///
    /// After the year 2255 (53-bit timestamp exhausted) the value stops increasing.
    pub(crate) fn next(&self) -> Tid {
        Tid::from_parts(self.advance(0), self.clock_id)
    }

    /// The next TID, also strictly greater than `prev` (say, a repository's last `rev`
    /// from before a restart). If nothing greater exists (`prev` is the maximal TID, or
    /// has its top bit set), returns a copy of `prev`; see [`TidClock::checked_next_after`].
    pub(crate) fn next_after(&self, prev: &Tid) -> Tid {
        self.checked_next_after(prev)
            .unwrap_or_else(|| prev.clone())
    }

    /// Like [`TidClock::next_after`], but `None` when no TID greater than `prev` exists.
    pub(crate) fn checked_next_after(&self, prev: &Tid) -> Option<Tid> {
        let floor = prev.timestamp_micros().saturating_add(1);
        let tid = Tid::from_parts(self.advance(floor), self.clock_id);
        (tid > *prev).then_some(tid)
    }

    /// Claims and returns a timestamp above the last one claimed, at least `floor`.
    fn advance(&self, floor: u64) -> u64 {
        let now = now_micros();
        let step = |last: u64| {
            now.max(floor)
                .max(last.saturating_add(1))
                .min(MAX_TIMESTAMP)
        };
        match self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(step(last)))
        {
            Ok(prev_last) | Err(prev_last) => step(prev_last),
        }
    }
}

fn now_micros() -> u64 {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    u64::try_from(micros).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;
    use std::sync::Arc;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("tid_syntax_valid.txt");
        assert_eq!(lines.len(), 4);
        vectors::assert_valid::<Tid>("tid valid", &lines, str::to_owned);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("tid_syntax_invalid.txt");
        assert_eq!(lines.len(), 9);
        vectors::assert_invalid::<Tid>("tid invalid", &lines);
    }

    /// The atproto repository's copy adds letter-first TIDs (valid under the spec's
    /// `[234567abcdefghij]` first-character rule) and drops some lines; nothing in it
    /// contradicts the top-level files, so no line is skipped.
    #[test]
    fn interop_extra() {
        let valid = vectors::extra("tid_syntax_valid.txt");
        assert_eq!(valid.len(), 6);
        vectors::assert_valid::<Tid>("extra tid valid", &valid, str::to_owned);
        let invalid = vectors::extra("tid_syntax_invalid.txt");
        assert_eq!(invalid.len(), 7);
        vectors::assert_invalid::<Tid>("extra tid invalid", &invalid);
    }

    #[test]
    fn known_values() {
        let t: Tid = "3jzfcijpj2z2a".parse().unwrap();
        assert_eq!(t.to_u64(), 1728652679052295174);
        assert_eq!(t.timestamp_micros(), 1688137381887007);
        assert_eq!(t.clock_id(), 6);
        assert_eq!(Tid::from_parts(1688137381887007, 6), t);
        assert_eq!(Tid::from_parts(0, 0).as_str(), "2222222222222");
        assert_eq!(
            Tid::from_parts(1_700_000_000_000_000, 5).as_str(),
            "3ke6kg3wk2227"
        );
        // Out-of-range parts are masked, never spill into the top bit.
        assert_eq!(
            Tid::from_parts(u64::MAX, u16::MAX).as_str(),
            "bzzzzzzzzzzzz"
        );
        let top: Tid = "jzzzzzzzzzzzz".parse().unwrap();
        assert_eq!(top.to_u64(), u64::MAX);
        assert_eq!(top.clock_id(), 1023);
    }

    #[test]
    fn parts_round_trip() {
        for (ts, clock) in [
            (0u64, 0u16),
            (1, 1),
            (1_688_137_381_887_007, 6),
            (1_735_689_600_123_456, 1023),
            (MAX_TIMESTAMP, 512),
        ] {
            let t = Tid::from_parts(ts, clock);
            let back: Tid = t.as_str().parse().unwrap();
            assert_eq!(back.timestamp_micros(), ts);
            assert_eq!(back.clock_id(), clock);
            assert_eq!(back, t);
        }
    }

    #[test]
    fn string_order_is_numeric_order() {
        let a = Tid::from_parts(1000, 1023);
        let b = Tid::from_parts(1001, 0);
        assert!(a < b);
        assert!(a.as_str() < b.as_str());
    }

    #[test]
    fn clock_strictly_increasing() {
        let clock = TidClock::with_clock_id(7);
        let mut prev = clock.next();
        for _ in 0..100_000 {
            let t = clock.next();
            assert!(t > prev, "{t} after {prev}");
            assert_eq!(t.clock_id(), 7);
            prev = t;
        }
    }

    #[test]
    fn clock_unique_across_threads() {
        let clock = Arc::new(TidClock::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let clock = Arc::clone(&clock);
                std::thread::spawn(move || {
                    let mut out = Vec::with_capacity(25_000);
                    for _ in 0..25_000 {
                        out.push(clock.next());
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            let part = h.join().unwrap();
            // Each thread sees its own calls in increasing order.
            assert!(part.windows(2).all(|w| w[0] < w[1]));
            all.extend(part);
        }
        assert_eq!(all.len(), 100_000);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 100_000);
    }

    #[test]
    fn clock_near_now() {
        let clock = TidClock::with_clock_id(1);
        let before = now_micros();
        let t = clock.next();
        let after = now_micros();
        assert!(t.timestamp_micros() >= before && t.timestamp_micros() <= after + 1);
    }

    #[test]
    fn next_after_future_prev() {
        let clock = TidClock::with_clock_id(3);
        // A rev from "the future" (say the clock went backwards across a restart).
        let prev = Tid::from_parts(now_micros() + 3_600_000_000, 1023);
        let t = clock.next_after(&prev);
        assert!(t > prev);
        assert_eq!(t.timestamp_micros(), prev.timestamp_micros() + 1);
        // Later TIDs from the same clock stay above it.
        let u = clock.next();
        assert!(u > t);
        // An old prev does not hold the clock back.
        let old = Tid::from_parts(1, 0);
        let v = clock.next_after(&old);
        assert!(v > u);
    }

    #[test]
    fn next_after_at_the_top() {
        let clock = TidClock::with_clock_id(1023);
        let prev = Tid::from_parts(MAX_TIMESTAMP, 5);
        let t = clock.checked_next_after(&prev).unwrap();
        assert_eq!(t, Tid::from_parts(MAX_TIMESTAMP, 1023));
        // Nothing exceeds the maximal TID, nor one with the top bit set.
        let max = Tid::from_parts(MAX_TIMESTAMP, 1023);
        assert_eq!(clock.checked_next_after(&max), None);
        assert_eq!(clock.next_after(&max), max);
        let high: Tid = "c222222222222".parse().unwrap();
        assert_eq!(clock.checked_next_after(&high), None);
    }

    #[test]
    fn serde_round_trip() {
        let t: Tid = "3jzfcijpj2z2a".parse().unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"3jzfcijpj2z2a\"");
        assert_eq!(serde_json::from_str::<Tid>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Tid>("\"3JZFCIJPJ2Z2A\"").is_err());
    }
}
