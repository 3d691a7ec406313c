//! Durations, times and outside text as an operator reads them, in logs,
//! mails and the status view: one place, so that every output of picomon
//! and of the watchdog says "3m 05s" the same way, and shows a control
//! character the same way.

use std::borrow::Cow;
use std::fmt::Write as _;
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

/// `text` (a plugin's output, a key, a reason) with every control
/// character shown escaped, on one line: a plugin that echoes a remote
/// server must not be able to clear the operator's screen, retitle the
/// window or split a log line. Escapes as a shell's `printf` reads them:
/// `\n`, `\r`, `\t`, `\x1b` (ESC), `\x7f`; the C1 controls, which some
/// terminals obey too, as `\u{9b}`. Other UTF-8 text is left alone.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escaped(text, |_| false)
}

/// Like `escape_controls`, but newlines (and tabs) are kept: for output
/// shown line by line, where a newline is structure, not an attack.
pub fn escape_controls_keep_lines(text: &str) -> Cow<'_, str> {
    escaped(text, |c| matches!(c, '\n' | '\t'))
}

fn escaped(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !c.is_control() || keep(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_and_text_is_left_alone() {
        let hostile = "HTTP OK\x1b]0;owned\x07\x1b[2J\rfake\x00\x7f\u{9b}31m é 日本\tcol";
        assert_eq!(
            escape_controls(hostile),
            "HTTP OK\\x1b]0;owned\\x07\\x1b[2J\\rfake\\x00\\x7f\\u{9b}31m é 日本\\tcol"
        );
        assert_eq!(escape_controls("a\nb"), "a\\nb");
        assert_eq!(escape_controls_keep_lines("a\x1b\nb\tc"), "a\\x1b\nb\tc");
        assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
    }

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
