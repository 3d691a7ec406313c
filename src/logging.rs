//! Logging: one line per event on standard error, through fern. Under
//! journald (standard error *is* the journal stream) lines carry a syslog
//! priority and no timestamp, since journald adds its own.
//!
//! Logging must never take picomon down: when standard error is closed
//! (a watchdog that was killed) or full, lines are dropped, never a panic,
//! and the daemon goes on monitoring and alerting.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::ConfigError;
use crate::sys;

/// EX_CONFIG from sysexits.h: the configuration is invalid.
pub const EX_CONFIG: u8 = 78;

static DEBUG_FORCED: AtomicBool = AtomicBool::new(false);

/// Standard error that swallows its own failures: fern panics when it
/// cannot write a line (nor its complaint about that), and a log line is
/// never worth an alert.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Sets up logging for `program`; `debug` (`-D`) wins over `log_level`.
pub fn init_logging(program: &'static str, debug: bool) {
    DEBUG_FORCED.store(debug, Ordering::Relaxed);
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some_and(|stream| sys::stderr_is(&stream.to_string_lossy()));
    let output: Box<dyn Write + Send> = Box::new(Stderr);
    let result = fern::Dispatch::new()
        .level(log::LevelFilter::Trace)
        .format(move |out, message, record| {
            let level = record.level();
            // What a plugin printed is shown, never obeyed, by the terminal
            // (a configuration error's " -> " lines keep their newlines).
            let message = message.to_string();
            let message = crate::human::escape_controls_keep_lines(&message);
            if journald {
                let priority = match level {
                    log::Level::Error => 3,
                    log::Level::Warn => 4,
                    log::Level::Info => 6,
                    log::Level::Debug | log::Level::Trace => 7,
                };
                out.finish(format_args!("<{priority}>{level:<5} {message}"))
            } else {
                let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
                out.finish(format_args!("{now} {program}: {level:<5} {message}"))
            }
        })
        .chain(output)
        .apply();
    if result.is_err() {
        say(&format!("{program}: warning: logging was already set up"));
    }
    set_log_level(log::LevelFilter::Info);
}

/// Sets the log level from the configuration, unless `-D` forced DEBUG.
pub fn set_log_level(level: log::LevelFilter) {
    if DEBUG_FORCED.load(Ordering::Relaxed) {
        log::set_max_level(log::LevelFilter::Debug.max(level));
    } else {
        log::set_max_level(level);
    }
}

/// One line on standard error, or nothing if it is gone (`eprintln!`
/// would panic).
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Prints an error and its causes the house way: `picomon: error: …`
/// then one ` -> cause` line each. Returns the exit code it deserves.
pub fn report_error(program: &str, err: &anyhow::Error) -> ExitCode {
    say(&format!("{program}: error: {err}"));
    for cause in err.chain().skip(1) {
        say(&format!(" -> {cause}"));
    }
    if err
        .chain()
        .any(|c| c.downcast_ref::<ConfigError>().is_some())
    {
        ExitCode::from(EX_CONFIG)
    } else {
        ExitCode::FAILURE
    }
}

/// Keeps repeated warnings of one kind about one check from flooding the
/// log (journald's rate limit would then drop the lines that matter): the
/// first in each `window` is logged, the rest only counted, and the count
/// rides on the next line logged. State switches and errors never go
/// through it.
pub(crate) struct Throttle {
    window: std::time::Duration,
    seen: std::collections::HashMap<String, (std::time::Instant, u64)>,
}

impl Throttle {
    pub(crate) fn new(window: std::time::Duration) -> Throttle {
        Throttle {
            window,
            seen: std::collections::HashMap::new(),
        }
    }

    /// Whether a line for `key` may be logged now; when it may, a note on
    /// how many were held back since the last one ("" when none were).
    pub(crate) fn admit(&mut self, key: &str, now: std::time::Instant) -> Option<String> {
        match self.seen.get_mut(key) {
            Some((last, held)) if now.duration_since(*last) < self.window => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let note = match std::mem::take(held) {
                    0 => String::new(),
                    n => format!(
                        " ({n} more times in the last {})",
                        crate::human::human_duration(now.duration_since(*last))
                    ),
                };
                *last = now;
                Some(note)
            }
            None => {
                self.seen.insert(key.to_string(), (now, 0));
                Some(String::new())
            }
        }
    }

    /// Forgets keys of checks no longer configured.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.seen.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_flood_of_one_warning_is_one_line_a_minute_with_a_count() {
        let mut t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.admit("a", t0), Some(String::new()));
        for s in 1..60 {
            assert_eq!(t.admit("a", t0 + Duration::from_secs(s)), None);
        }
        // Another check's warning is its own.
        assert_eq!(t.admit("b", t0), Some(String::new()));
        let note = t
            .admit("a", t0 + Duration::from_secs(61))
            .expect("admitted");
        assert!(note.contains("59 more times"), "{note}");
        assert_eq!(t.admit("a", t0 + Duration::from_secs(62)), None);
    }
}
