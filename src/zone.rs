//! The relay's time zone (`--time-zone`, an IANA name): where a day begins for "today",
//! the chart's days and date filters. The only user of jiff, whose zone database is
//! compiled into the binary.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// A zone by its IANA name (`Europe/Moscow`), or why there is none.
    pub fn named(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        TimeZone::get(name)
            .map(|tz| Zone {
                name: name.to_string(),
                tz,
            })
            .map_err(|_| {
                format!("{name:?} is not a time zone name; use an IANA name such as Europe/Moscow or UTC")
            })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local date holding instant `ms`.
    fn date_of(&self, ms: i64) -> Option<Date> {
        Some(
            Timestamp::from_millisecond(ms)
                .ok()?
                .to_zoned_datetime(self.tz.clone())
                .date(),
        )
    }

    /// When a local date begins, in ms (the first instant of the day, also on days a
    /// clock change skips midnight).
    fn start_of(&self, date: Date) -> Option<i64> {
        let midnight = date.to_zoned_datetime(self.tz.clone()).ok()?;
        Some(midnight.start_of_day().ok()?.timestamp().as_millisecond())
    }

    /// When the local day written `YYYY-MM-DD` begins; None for anything else.
    pub fn day_start(&self, text: &str) -> Option<i64> {
        if text.len() != 10 {
            return None;
        }
        self.start_of(text.parse::<Date>().ok()?)
    }

    /// The `days` local days up to the one holding `now_ms`, oldest first: each as its
    /// date (`YYYY-MM-DD`), its start and its end (ms, end exclusive). A day is 23 to 25
    /// hours long where clocks change.
    pub fn last_days(&self, now_ms: i64, days: i64) -> Vec<(String, i64, i64)> {
        let Some(today) = self.date_of(now_ms) else {
            return Vec::new();
        };
        (0..days)
            .rev()
            .filter_map(|back| {
                let date = today.checked_sub(jiff::Span::new().days(back)).ok()?;
                let next = date.tomorrow().ok()?;
                Some((date.to_string(), self.start_of(date)?, self.start_of(next)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_25_1405_UTC: i64 = 1_795_615_500_000;

    #[test]
    fn a_day_begins_at_local_midnight() {
        let moscow = Zone::named("Europe/Moscow").unwrap();
        // Midnight in Moscow is 21:00 UTC the day before.
        assert_eq!(
            moscow.day_start("2026-11-25"),
            crate::time::parse_rfc3339("2026-11-24T21:00:00Z")
        );
        let days = moscow.last_days(NOV_25_1405_UTC, 2);
        assert_eq!(days[1].0, "2026-11-25");
        assert_eq!(days[1].2 - days[1].1, 86_400_000);
        assert_eq!(days[0].2, days[1].1);
        assert_eq!(Zone::utc().last_days(NOV_25_1405_UTC, 30).len(), 30);
    }

    #[test]
    fn days_where_clocks_change_are_longer_or_shorter() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let start = berlin.day_start("2026-10-25").unwrap();
        let end = berlin.day_start("2026-10-26").unwrap();
        assert_eq!(end - start, 25 * 3_600_000);
    }

    #[test]
    fn an_unknown_name_says_what_is_expected() {
        assert!(Zone::named("Mars/Olympus").unwrap_err().contains("IANA"));
        assert!(Zone::named("Asia/Kolkata").is_ok());
        assert!(Zone::utc().day_start("2026-13-01").is_none());
        assert!(Zone::utc().day_start("2026-11-25T00:00:00Z").is_none());
    }
}
