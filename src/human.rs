//! Durations and times as an operator reads them, in logs, mails and the
//! status view: one place, so that every output of picomon and of the
//! watchdog says "3m 05s" the same way.

use std::time::{Duration, SystemTime};

/// Seconds as an operator writes them: `2`, `0.5`.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Formats a duration for people: `45s`, `3m 05s`, `1h 02m 03s`, `2d 4h 00m`,
/// rounded to the nearest second (1.98 s is `2s`, not `1s`); under a
/// second, to a tenth.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_millis(950) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    let (days, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec:02}s"),
        (0, _, _) => format!("{h}h {m:02}m {sec:02}s"),
        _ => format!("{days}d {h}h {m:02}m"),
    }
}

/// `n` and the noun it counts, singular or plural: `1 check`, `3 checks`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        _ => format!("{n} {many}"),
    }
}

/// A point in time for people (UTC, to the second).
pub fn human_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_millis(500)), "0.5s");
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        // Rounded, not cut.
        assert_eq!(human_duration(Duration::from_millis(1980)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1400)), "1s");
        assert_eq!(human_duration(Duration::from_millis(59_600)), "1m 00s");
        assert_eq!(human_duration(Duration::from_millis(960)), "1s");
        assert_eq!(count(1, "check", "checks"), "1 check");
        assert_eq!(count(0, "check", "checks"), "0 checks");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 02m 03s");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86400 + 4 * 3600)),
            "2d 4h 00m"
        );
    }

    #[test]
    fn seconds_as_written() {
        assert_eq!(fmt_secs(Duration::from_secs(2)), "2");
        assert_eq!(fmt_secs(Duration::from_millis(500)), "0.5");
    }
}
