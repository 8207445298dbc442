//! Time as unix milliseconds: the clock, RFC 3339 in UTC, and UTC calendar days.
//!
//! Dates use Howard Hinnant's `days_from_civil` / `civil_from_days`, so no date crate is
//! needed and every input, however hostile, maps to an answer without panicking.

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i64 = 86_400_000;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the years RFC 3339 can write.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// The only clock in the crate, so everything else stays testable with fixed times.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        // A clock set before 1970 is wrong but still ordered; keep it negative.
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// `2026-11-13T10:15:02Z`, with `.811` before the `Z` only when there are milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let (year, month, day) = civil_from_days(day_number(ms));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (secs, millis) = (in_day / 1000, in_day % 1000);
    let clock = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let frac = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    format!("{year:04}-{month:02}-{day:02}T{clock}{frac}Z")
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`, `z` and a space for `T` are accepted
/// because hand-written flows produce them. Digits past milliseconds are dropped.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |from: usize, len: usize| digits(b.get(from..from.checked_add(len)?)?);
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let (millis, zone) = split_fraction(b.get(19..)?)?;
    let offset_minutes = match zone {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return None,
    };
    // Second 60 is RFC 3339's leap second; it simply rolls into the next minute.
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let seconds = (hour * 60 + minute - offset_minutes) * 60 + second;
    Some(day_start_ms(days_from_civil(year, month, day)) + seconds * 1000 + millis)
}

/// `YYYY-MM-DD` of the UTC day holding `ms`, clamped to years 0000..9999.
pub fn date_string(ms: i64) -> String {
    let (year, month, day) = civil_from_days(day_number(ms.clamp(MIN_MS, MAX_MS)));
    format!("{year:04}-{month:02}-{day:02}")
}

/// The UTC calendar and clock of an instant: (year, month 1-12, day, hour, minute), for
/// the page's human-readable dates.
pub fn civil_utc(ms: i64) -> (i64, i64, i64, i64, i64) {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let (year, month, day) = civil_from_days(day_number(ms));
    let minutes = ms.rem_euclid(MS_PER_DAY) / 60_000;
    (year, month, day, minutes / 60, minutes % 60)
}

/// Days since 1970-01-01 UTC; floor division so times before 1970 land on their own day.
pub fn day_number(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

pub fn day_start_ms(day: i64) -> i64 {
    day.saturating_mul(MS_PER_DAY)
}

/// The optional `.fraction` as milliseconds, and what follows it (the zone).
fn split_fraction(rest: &[u8]) -> Option<(i64, &[u8])> {
    let Some(frac) = rest.strip_prefix(b".") else {
        return Some((0, rest));
    };
    let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let millis = frac
        .get(..len)?
        .iter()
        .chain(b"00")
        .take(3)
        .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some((millis, frac.get(len..)?))
}

/// A run of ASCII digits as a number; short runs only, so it cannot overflow.
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Callers pass days of clamped times, so the arithmetic stays far from overflow.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checked against `date -u -d @SECONDS`.
    const KNOWN: &[(i64, &str)] = &[
        (1_763_028_902, "2025-11-13T10:15:02Z"),
        (1_794_564_902, "2026-11-13T10:15:02Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (-14_182_940, "1969-07-20T20:17:40Z"),
        (-2_208_988_800, "1900-01-01T00:00:00Z"),
        (-62_167_219_200, "0000-01-01T00:00:00Z"),
        (253_402_300_799, "9999-12-31T23:59:59Z"),
        (0, "1970-01-01T00:00:00Z"),
    ];

    #[test]
    fn formats_and_parses_known_instants() {
        for &(secs, text) in KNOWN {
            assert_eq!(format_rfc3339(secs * 1000), text);
            assert_eq!(parse_rfc3339(text), Some(secs * 1000), "{text}");
        }
    }

    #[test]
    fn milliseconds_appear_only_when_present() {
        assert_eq!(
            format_rfc3339(1_763_028_902_811),
            "2025-11-13T10:15:02.811Z"
        );
        assert_eq!(
            format_rfc3339(1_763_028_902_001),
            "2025-11-13T10:15:02.001Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn extreme_values_clamp_instead_of_panicking() {
        assert_eq!(format_rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(date_string(i64::MIN), "0000-01-01");
        assert_eq!(date_string(i64::MAX), "9999-12-31");
        assert_eq!(day_start_ms(i64::MAX), i64::MAX);
        assert_eq!(day_start_ms(i64::MIN), i64::MIN);
        assert_eq!(day_number(i64::MIN), i64::MIN.div_euclid(MS_PER_DAY));
    }

    #[test]
    fn round_trips_across_the_whole_range() {
        let mut ms = MIN_MS;
        while ms <= MAX_MS {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{ms}");
            ms += 86_399_977_123; // not a whole day, so the time of day varies too
        }
    }

    #[test]
    fn civil_and_days_agree_on_every_day() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn accepts_lenient_spellings_and_offsets() {
        let base = 1_794_564_902_000;
        assert_eq!(parse_rfc3339("2026-11-13t10:15:02z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-13 10:15:02Z"), Some(base));
        assert_eq!(parse_rfc3339("  2026-11-13T10:15:02Z\n"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-13T12:15:02+02:00"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-13T05:45:02-04:30"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-13T10:15:02-00:00"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-13T10:15:02.8Z"), Some(base + 800));
        assert_eq!(parse_rfc3339("2026-11-13T10:15:02.81Z"), Some(base + 810));
        assert_eq!(
            parse_rfc3339("2026-11-13T10:15:02.811999Z"),
            Some(base + 811)
        );
        assert_eq!(parse_rfc3339("2026-11-13T10:15:60Z"), Some(base + 58_000));
    }

    #[test]
    fn rejects_invalid_dates_and_shapes() {
        for bad in [
            "",
            "2026",
            "2026-11-13",
            "2026-11-13T10:15:02",
            "2026-11-13T10:15Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-11-13T24:00:00Z",
            "2026-11-13T10:60:00Z",
            "2026-11-13T10:15:61Z",
            "2026-11-13T10:15:02.Z",
            "2026-11-13T10:15:02+0200",
            "2026-11-13T10:15:02+24:00",
            "2026-11-13T10:15:02+02:60",
            "2026-11-13T10:15:02ZZ",
            "2026-11-13X10:15:02Z",
            "+2026-11-13T10:15:02Z",
            "2026-1-13T10:15:02Z",
            "２０２６-11-13T10:15:02Z",
            "2026-11-13T10:15:02Zé",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn hostile_strings_never_panic() {
        let samples = [
            "é",
            "2026-11-1é",
            "2026-11-13T10:15:02.",
            "9999-12-31T23:59:59.999-23:59",
        ];
        for s in samples {
            for cut in 0..=s.len() {
                if let Some(prefix) = s.get(..cut) {
                    let _ = parse_rfc3339(prefix);
                }
            }
        }
        assert!(parse_rfc3339("0000-01-01T00:00:00+23:59").is_some_and(|ms| ms < MIN_MS));
    }

    #[test]
    fn days_floor_towards_the_past() {
        assert_eq!(day_number(0), 0);
        assert_eq!(day_number(MS_PER_DAY - 1), 0);
        assert_eq!(day_number(MS_PER_DAY), 1);
        assert_eq!(day_number(-1), -1);
        assert_eq!(day_number(-MS_PER_DAY), -1);
        assert_eq!(day_number(-MS_PER_DAY - 1), -2);
        assert_eq!(
            day_start_ms(day_number(1_763_028_902_811)),
            1_762_992_000_000
        );
        assert_eq!(day_start_ms(-1), -MS_PER_DAY);
    }

    #[test]
    fn civil_parts_of_an_instant() {
        assert_eq!(civil_utc(1_763_028_902_811), (2025, 11, 13, 10, 15));
        assert_eq!(civil_utc(-1), (1969, 12, 31, 23, 59));
        assert_eq!(civil_utc(i64::MAX), (9999, 12, 31, 23, 59));
    }

    #[test]
    fn date_strings() {
        assert_eq!(date_string(1_763_028_902_811), "2025-11-13");
        assert_eq!(date_string(-1), "1969-12-31");
        assert_eq!(date_string(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn clock_is_after_this_code_was_written() {
        assert!(now_ms() > 1_763_000_000_000);
    }
}
