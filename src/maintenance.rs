//! Recurring maintenance windows (`[maintenance.NAME]`): a cron line
//! starts one, `duration` later it ends, and while it is in force the
//! instances its pattern matches are silenced (see `silence.rs`, which
//! asks `in_force` once per look). Pure functions of the clock, passed
//! in: a window's edges are tested at the second without waiting for
//! them, and a restart finds the same windows in force, since they come
//! from the configuration and the time alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::human::{escape_controls, human_duration, human_time};

use crate::pattern::Pattern;

/// Occurrences looked at when checking that a window ends before the
/// next one starts: a few years of a daily or weekly line (DST changes
/// included), and a bounded check for a line that fires every minute.
const LOOKED_AT: usize = 1500;

/// One `[maintenance.NAME]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) name: String,
    /// As written, for the status view.
    pub(crate) pattern_text: String,
    pub(crate) pattern: Pattern,
    /// As written, for the status view.
    pub(crate) cron_text: String,
    pub(crate) cron: Cron,
    pub(crate) duration: Duration,
    pub(crate) reason: String,
}

/// One occurrence of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
}

/// The five-field cron line `text` (seconds and years refused, as Vixie
/// cron has neither), or why not.
pub(crate) fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !text.trim_start().starts_with('@') && fields != 5 {
        return Err(format!(
            "{text:?}: a cron line has five fields (minute hour day-of-month month day-of-week), not {fields}"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("{text:?}: {e}"))
}

fn zoned(t: SystemTime, tz: &TimeZone) -> Option<Zoned> {
    Timestamp::try_from(t)
        .ok()
        .map(|ts| ts.to_zoned(tz.clone()))
}

fn system(z: &Zoned) -> SystemTime {
    SystemTime::from(z.timestamp())
}

/// The first start of `cron` after `t` (strictly), in `tz`.
fn start_after(cron: &Cron, tz: &TimeZone, t: SystemTime) -> Option<SystemTime> {
    let from = zoned(t, tz)?;
    cron.find_next_occurrence(&from, false)
        .ok()
        .map(|z| system(&z))
}

/// The occurrence of `window` in force at `now`, if any: the one that
/// started at or before `now` and ends after it.
pub(crate) fn in_force(window: &Window, tz: &TimeZone, now: SystemTime) -> Option<Span> {
    // A start after `now - duration` is one whose end is after `now`.
    let after = now.checked_sub(window.duration)?;
    let start = start_after(&window.cron, tz, after)?;
    (start <= now).then(|| Span {
        start,
        end: start + window.duration,
    })
}

/// The next occurrence of `window` that starts after `now`.
pub(crate) fn next(window: &Window, tz: &TimeZone, now: SystemTime) -> Option<Span> {
    let start = start_after(&window.cron, tz, now)?;
    Some(Span {
        start,
        end: start + window.duration,
    })
}

/// The shortest time between two starts of `cron` from `from` on, over
/// the next `LOOKED_AT` of them: a window longer than that would run
/// into the next one (never ending, for a line that fires every minute).
pub(crate) fn shortest_period(cron: &Cron, tz: &TimeZone, from: SystemTime) -> Option<Duration> {
    let mut last = start_after(cron, tz, from)?;
    let mut shortest: Option<Duration> = None;
    for _ in 0..LOOKED_AT {
        let Some(start) = start_after(cron, tz, last) else {
            break;
        };
        let gap = start.duration_since(last).unwrap_or_default();
        shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
        if gap <= Duration::from_secs(60) {
            // A minute is as short as cron goes.
            break;
        }
        last = start;
    }
    shortest
}

/// A window as `picomon status` and `picomon silence list` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WindowView {
    pub name: String,
    pub pattern: String,
    pub cron: String,
    /// Seconds.
    pub duration: u64,
    pub reason: String,
    /// The end of the occurrence in force, in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// The start of the next occurrence, in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Every window of `windows` at `now`: in force or not, and the next.
pub(crate) fn views(windows: &[Window], tz: &TimeZone, now: SystemTime) -> Vec<WindowView> {
    windows
        .iter()
        .map(|w| WindowView {
            name: w.name.clone(),
            pattern: w.pattern_text.clone(),
            cron: w.cron_text.clone(),
            duration: w.duration.as_secs(),
            reason: w.reason.clone(),
            until: in_force(w, tz, now).map(|s| secs(s.end)),
            next: next(w, tz, now).map(|s| secs(s.start)),
        })
        .collect()
}

/// The `Maintenance windows:` section (nothing without windows).
pub(crate) fn render(windows: &[WindowView], now: SystemTime) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if windows.is_empty() {
        return out;
    }
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    let _ = writeln!(out, "Maintenance windows: {}", windows.len());
    for w in windows {
        let state = match w.until {
            Some(until) => format!(
                "IN FORCE until {} ({} left)",
                human_time(at(until)),
                human_duration(at(until).duration_since(now).unwrap_or_default())
            ),
            None => "not in force".to_string(),
        };
        let next = match w.next {
            Some(next) => format!("next {}", human_time(at(next))),
            None => "no next one".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} {}: {state}, {next} (cron \"{}\" for {}): {}",
            w.name,
            w.pattern,
            w.cron,
            human_duration(Duration::from_secs(w.duration)),
            escape_controls(&w.reason)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central European time with its DST rules, written out so the test
    /// needs no tzdata: summer time from the last Sunday of March 02:00
    /// to the last Sunday of October 03:00.
    fn berlin() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("posix tz")
    }

    fn window(cron: &str, secs: u64) -> Window {
        Window {
            name: "w".into(),
            pattern_text: "*".into(),
            pattern: Pattern::new("*").expect("pattern"),
            cron_text: cron.into(),
            cron: parse_cron(cron).expect("cron"),
            duration: Duration::from_secs(secs),
            reason: "test".into(),
        }
    }

    /// The instant of `civil` (`2026-03-29T01:59:59`) in `tz`.
    fn at(civil: &str, tz: &TimeZone) -> SystemTime {
        let dt: jiff::civil::DateTime = civil.parse().expect("civil time");
        system(&dt.to_zoned(tz.clone()).expect("zoned"))
    }

    fn utc(civil: &str) -> SystemTime {
        at(civil, &TimeZone::UTC)
    }

    #[test]
    fn a_window_is_in_force_from_its_start_to_just_before_its_end() {
        // Sundays 02:00 for one hour, in UTC; 2026-12-06 is a Sunday.
        let w = window("0 2 * * 0", 3600);
        let tz = TimeZone::UTC;
        assert_eq!(in_force(&w, &tz, utc("2026-12-06T01:59:59")), None);
        let span = in_force(&w, &tz, utc("2026-12-06T02:00:00")).expect("at its start");
        assert_eq!(span.start, utc("2026-12-06T02:00:00"));
        assert_eq!(span.end, utc("2026-12-06T03:00:00"));
        assert!(in_force(&w, &tz, utc("2026-12-06T02:59:59")).is_some());
        assert_eq!(in_force(&w, &tz, utc("2026-12-06T03:00:00")), None);
        // Monday: none; the next one is a week after the last.
        assert_eq!(in_force(&w, &tz, utc("2026-12-07T02:30:00")), None);
        let coming = next(&w, &tz, utc("2026-12-06T02:30:00")).expect("next");
        assert_eq!(coming.start, utc("2026-12-13T02:00:00"));
    }

    #[test]
    fn windows_follow_the_time_zone_they_are_read_in() {
        let w = window("0 2 * * *", 1800);
        let tz = berlin();
        // 02:00 in Berlin in winter is 01:00 UTC.
        assert!(in_force(&w, &tz, utc("2026-12-06T01:10:00")).is_some());
        assert!(in_force(&w, &tz, utc("2026-12-06T02:10:00")).is_none());
        // In summer, 00:00 UTC.
        assert!(in_force(&w, &tz, utc("2026-07-06T00:10:00")).is_some());
    }

    #[test]
    fn at_spring_forward_a_window_in_the_skipped_hour_starts_right_after_it() {
        // 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST.
        let w = window("30 2 * * *", 1800);
        let tz = berlin();
        let span = next(&w, &tz, at("2026-03-29T01:00:00", &tz)).expect("next");
        assert_eq!(span.start, at("2026-03-29T03:00:00", &tz));
        assert_eq!(span.end, at("2026-03-29T03:30:00", &tz));
        assert!(in_force(&w, &tz, at("2026-03-29T03:15:00", &tz)).is_some());
        // The day after, as usual.
        let after = next(&w, &tz, span.end).expect("next");
        assert_eq!(after.start, at("2026-03-30T02:30:00", &tz));
    }

    #[test]
    fn at_fall_back_a_window_in_the_repeated_hour_starts_once() {
        // 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET.
        let w = window("30 2 * * *", 600);
        let tz = berlin();
        let first = next(&w, &tz, at("2026-10-25T01:00:00", &tz)).expect("next");
        // The first 02:30 (CEST), 00:30 UTC.
        assert_eq!(first.start, utc("2026-10-25T00:30:00"));
        let again = next(&w, &tz, first.end).expect("next");
        assert_eq!(again.start, at("2026-10-26T02:30:00", &tz));
        // The second 02:30 (CET, 01:30 UTC) is no window.
        assert!(in_force(&w, &tz, utc("2026-10-25T01:35:00")).is_none());
    }

    #[test]
    fn the_shortest_period_is_found_across_a_dst_change() {
        let tz = berlin();
        let daily = parse_cron("0 1 * * *").expect("cron");
        // The spring-forward day is 23 hours long.
        assert_eq!(
            shortest_period(&daily, &tz, utc("2026-01-01T00:00:00")),
            Some(Duration::from_secs(23 * 3600))
        );
        let minutely = parse_cron("* * * * *").expect("cron");
        assert_eq!(
            shortest_period(&minutely, &TimeZone::UTC, utc("2026-01-01T00:00:00")),
            Some(Duration::from_secs(60))
        );
        let weekdays = parse_cron("0 2 * * 1-5").expect("cron");
        assert_eq!(
            shortest_period(&weekdays, &TimeZone::UTC, utc("2026-01-01T00:00:00")),
            Some(Duration::from_secs(24 * 3600))
        );
    }

    #[test]
    fn a_cron_line_has_five_fields_that_parse() {
        assert!(parse_cron("0 2 * * 0").is_ok());
        assert!(parse_cron("@daily").is_ok());
        let six = parse_cron("0 0 2 * * 0").expect_err("six fields");
        assert!(six.contains("five fields"), "{six}");
        assert!(parse_cron("61 2 * * 0").is_err());
        assert!(parse_cron("0 2 * * MONDAY").is_err());
        assert!(parse_cron("").is_err());
    }
}
