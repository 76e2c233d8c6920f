//! The Lexicon `datetime` format (atproto.com/specs/lexicon#datetime): the intersection of
//! RFC 3339 and ISO 8601.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Utc};

use super::{Error, string_type};

const MAX_LEN: usize = 64;

/// A datetime string that passed the atproto syntax check, e.g. `1985-04-12T23:20:50.123Z`.
///
/// Shape: `YYYY-MM-DDTHH:MM:SS`, optional `.` and fraction digits, then `Z` or `±HH:MM`
/// (but not `-00:00`); upper-case `T` and `Z`; at most 64 characters. The string is kept
/// exactly as given. The syntax check does not look at the values (month 13 passes);
/// [`Datetime::parse_strict`] and [`Datetime::to_chrono`] do.
///
/// `Ord` compares the strings, which is chronological only between values written with
/// the same offset and precision.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Datetime(String);

/// The numeric fields of a syntactically valid datetime.
struct Fields {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Offset from UTC: east (`+`) or west (`-`), hours, minutes.
    offset: (bool, u32, u32),
}

/// Parses `n` ASCII digits at the start of `s`.
fn digits(s: &[u8], n: usize) -> Option<(u32, &[u8])> {
    let (head, rest) = s.split_at_checked(n)?;
    let mut v: u32 = 0;
    for &b in head {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some((v, rest))
}

fn expect(s: &[u8], c: u8) -> Option<&[u8]> {
    match s.split_first() {
        Some((&b, rest)) if b == c => Some(rest),
        _ => None,
    }
}

/// The syntax check. Returns the fields, unchecked for range.
fn scan(s: &str) -> Result<Fields, Error> {
    const SHAPE: Error = Error::Datetime(
        "must look like YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +HH:MM / -HH:MM",
    );
    if s.len() > MAX_LEN {
        return Err(Error::Datetime("longer than 64 characters"));
    }
    let b = s.as_bytes();
    let (year, b) = digits(b, 4).ok_or(SHAPE)?;
    let b = expect(b, b'-').ok_or(SHAPE)?;
    let (month, b) = digits(b, 2).ok_or(SHAPE)?;
    let b = expect(b, b'-').ok_or(SHAPE)?;
    let (day, b) = digits(b, 2).ok_or(SHAPE)?;
    let b = expect(b, b'T').ok_or(SHAPE)?;
    let (hour, b) = digits(b, 2).ok_or(SHAPE)?;
    let b = expect(b, b':').ok_or(SHAPE)?;
    let (minute, b) = digits(b, 2).ok_or(SHAPE)?;
    let b = expect(b, b':').ok_or(SHAPE)?;
    let (second, mut b) = digits(b, 2).ok_or(SHAPE)?;

    let mut nanos: u32 = 0;
    if let Some(rest) = expect(b, b'.') {
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(Error::Datetime("empty fraction of a second"));
        }
        let (frac, rest) = rest.split_at(n);
        // Only the first nine digits (nanoseconds) matter.
        for i in 0..9 {
            let d = frac.get(i).map_or(0, |&c| u32::from(c - b'0'));
            nanos = nanos * 10 + d;
        }
        b = rest;
    }

    let offset = match b {
        b"Z" => (true, 0, 0),
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (oh, tz) = digits(tz, 2).ok_or(SHAPE)?;
            let tz = expect(tz, b':').ok_or(SHAPE)?;
            let (om, tz) = digits(tz, 2).ok_or(SHAPE)?;
            if !tz.is_empty() {
                return Err(SHAPE);
            }
            if *sign == b'-' && oh == 0 && om == 0 {
                return Err(Error::Datetime("\"-00:00\" is not allowed; use Z"));
            }
            (*sign == b'+', oh, om)
        }
        _ => return Err(SHAPE),
    };

    Ok(Fields {
        // At most 9999.
        year: i32::try_from(year).map_err(|_| SHAPE)?,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
        offset,
    })
}

/// The semantic check: a real point in time that is not before year 0 in UTC.
fn resolve(f: &Fields) -> Result<DateTime<FixedOffset>, Error> {
    let date = NaiveDate::from_ymd_opt(f.year, f.month, f.day)
        .ok_or(Error::Datetime("no such calendar date"))?;
    // RFC 3339 allows a leap second (:60); chrono represents it as :59 plus a second of nanos.
    let time = if f.second == 60 {
        NaiveTime::from_hms_nano_opt(f.hour, f.minute, 59, 1_000_000_000 + f.nanos)
    } else {
        NaiveTime::from_hms_nano_opt(f.hour, f.minute, f.second, f.nanos)
    }
    .ok_or(Error::Datetime("no such time of day"))?;
    let (east, oh, om) = f.offset;
    if oh > 23 || om > 59 {
        return Err(Error::Datetime("timezone offset out of range"));
    }
    // At most 23:59, so these conversions cannot fail.
    let secs = i32::try_from(oh * 3600 + om * 60).unwrap_or(0);
    let offset = FixedOffset::east_opt(if east { secs } else { -secs })
        .ok_or(Error::Datetime("timezone offset out of range"))?;
    let local = date.and_time(time);
    let utc = local
        .checked_sub_offset(offset)
        .ok_or(Error::Datetime("out of range"))?;
    if utc.year() < 0 {
        return Err(Error::Datetime("normalizes to a time before year 0"));
    }
    Ok(DateTime::from_naive_utc_and_offset(utc, offset))
}

impl Datetime {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Syntax check plus semantic check: the string must name a real point in time
    /// (no month 13, hour 25, second 61, …) that is not before year 0 in UTC.
    pub fn parse_strict(s: &str) -> Result<Datetime, Error> {
        let dt: Datetime = s.parse()?;
        dt.to_chrono()?;
        Ok(dt)
    }

    /// The point in time, with its original offset. Fails for values that pass the syntax
    /// check but are impossible (see [`Datetime::parse_strict`]).
    pub fn to_chrono(&self) -> Result<DateTime<FixedOffset>, Error> {
        resolve(&scan(&self.0)?)
    }

    /// The current time with millisecond precision in UTC, e.g. `2024-01-02T03:04:05.678Z`.
    pub fn now() -> Datetime {
        // The system clock is between years 0 and 9999 in practice; should it ever not be,
        // fall back to the epoch rather than hold an invalid value.
        Datetime::from_utc(Utc::now())
            .unwrap_or_else(|_| Datetime("1970-01-01T00:00:00.000Z".to_owned()))
    }

    /// Formats a UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (millisecond precision).
    /// Fails for years outside 0..=9999, which have no four-digit form.
    pub fn from_utc(dt: DateTime<Utc>) -> Result<Datetime, Error> {
        dt.to_rfc3339_opts(SecondsFormat::Millis, true).parse()
    }
}

impl TryFrom<String> for Datetime {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        scan(&s)?;
        Ok(Datetime(s))
    }
}

string_type!(Datetime);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_syntax_valid() {
        let lines = vectors::syntax("datetime_syntax_valid.txt");
        assert_eq!(lines.len(), 35);
        vectors::assert_valid::<Datetime>("datetime valid", &lines, str::to_owned);
        for line in &lines {
            let r = Datetime::parse_strict(line);
            assert!(r.is_ok(), "{line:?} should parse strictly: {r:?}");
        }
    }

    #[test]
    fn interop_syntax_invalid() {
        let lines = vectors::syntax("datetime_syntax_invalid.txt");
        assert_eq!(lines.len(), 45);
        vectors::assert_invalid::<Datetime>("datetime invalid", &lines);
    }

    #[test]
    fn interop_parse_invalid() {
        let lines = vectors::syntax("datetime_parse_invalid.txt");
        assert_eq!(lines.len(), 7);
        assert_syntax_ok_strict_err(&lines);
    }

    fn assert_syntax_ok_strict_err(lines: &[String]) {
        for line in lines {
            let dt: Datetime = line
                .parse()
                .unwrap_or_else(|e| panic!("{line:?} should pass the syntax check: {e}"));
            assert!(dt.to_chrono().is_err(), "{line:?} should not resolve");
            assert!(Datetime::parse_strict(line).is_err(), "{line:?}");
        }
    }

    /// Lines of the atproto repository's copy that contradict the top-level files.
    /// `0000-01-01T00:00:00+01:00` is well-formed (it passes the syntax check) and only
    /// fails when resolved (it is before year 0 in UTC): the top-level files list it under
    /// parse-invalid, the copy under syntax-invalid. We follow the top-level files.
    const EXTRA_DIVERGENT_SYNTAX_INVALID: [&str; 1] = ["0000-01-01T00:00:00+01:00"];

    #[test]
    fn interop_extra() {
        let valid = vectors::extra("datetime_syntax_valid.txt");
        assert_eq!(valid.len(), 33);
        vectors::assert_valid::<Datetime>("extra datetime valid", &valid, str::to_owned);

        let invalid = vectors::extra("datetime_syntax_invalid.txt");
        assert_eq!(invalid.len(), 46);
        let (divergent, rest): (Vec<String>, Vec<String>) = invalid
            .into_iter()
            .partition(|l| EXTRA_DIVERGENT_SYNTAX_INVALID.contains(&l.as_str()));
        assert_eq!(divergent, EXTRA_DIVERGENT_SYNTAX_INVALID);
        vectors::assert_invalid::<Datetime>("extra datetime invalid", &rest);
        // The skipped line behaves as the top-level files say.
        assert_syntax_ok_strict_err(&divergent);

        let parse_invalid = vectors::extra("datetime_parse_invalid.txt");
        assert_eq!(parse_invalid.len(), 6);
        assert_syntax_ok_strict_err(&parse_invalid);
    }

    #[test]
    fn to_chrono_values() {
        let dt: Datetime = "1985-04-12T23:20:50.123-07:00".parse().unwrap();
        let c = dt.to_chrono().unwrap();
        // 1985-04-13T06:20:50Z
        assert_eq!(c.timestamp(), 482221250);
        assert_eq!(c.timestamp_subsec_millis(), 123);
        assert_eq!(c.offset().local_minus_utc(), -7 * 3600);
        let dt: Datetime = "1985-04-12T23:20:50.123456789012Z".parse().unwrap();
        assert_eq!(dt.to_chrono().unwrap().timestamp_subsec_nanos(), 123456789);
        // A leap second resolves to the last second of the minute, plus one second of nanos.
        let leap = Datetime::parse_strict("2016-12-31T23:59:60.5Z").unwrap();
        assert_eq!(leap.to_chrono().unwrap().timestamp(), 1483228799);
        let dt: Datetime = "0000-01-01T00:00:00.000Z".parse().unwrap();
        assert_eq!(dt.to_chrono().unwrap().year(), 0);
        assert_eq!(
            Datetime::parse_strict("1985-02-29T00:00:00Z"),
            Err(Error::Datetime("no such calendar date"))
        );
        assert_eq!(
            Datetime::parse_strict("0000-01-01T00:00:00+01:00"),
            Err(Error::Datetime("normalizes to a time before year 0"))
        );
    }

    #[test]
    fn now_format() {
        let now = Datetime::now();
        let s = now.as_str();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with('Z'));
        assert_eq!(s.as_bytes().get(19), Some(&b'.'));
        assert!(Datetime::parse_strict(s).is_ok());
        let fixed = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.678912Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Datetime::from_utc(fixed).unwrap().as_str(),
            "2024-01-02T03:04:05.678Z"
        );
    }

    #[test]
    fn serde_round_trip() {
        let dt: Datetime = "1985-04-12T23:20:50.123Z".parse().unwrap();
        let json = serde_json::to_string(&dt).unwrap();
        assert_eq!(json, "\"1985-04-12T23:20:50.123Z\"");
        assert_eq!(serde_json::from_str::<Datetime>(&json).unwrap(), dt);
        assert!(serde_json::from_str::<Datetime>("\"1985-04-12 23:20:50Z\"").is_err());
    }
}
