//! Logging: one line per event on standard error, through fern. Under
//! journald (standard error *is* the journal stream) lines carry a syslog
//! priority and no timestamp, since journald adds its own. Under the
//! watchdog, standard error is the watchdog's pipe, which the watchdog
//! copies to the journal stream as it is: there the watchdog asks for
//! journal lines (`--log-priorities`), since only it can know where they
//! end up, and it reads the priorities back off for its own mail.
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
/// Lines go to the journal: a `<N>` syslog priority first, no timestamp.
static TO_JOURNAL: AtomicBool = AtomicBool::new(false);

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
/// Lines are shaped for the journal when standard error really is the
/// stream `JOURNAL_STREAM` names (the variable alone is inherited through
/// pipes and redirections too), or when `to_journal` says a reader passes
/// them on to it (the watchdog's `--log-priorities`).
pub fn init_logging(program: &'static str, debug: bool, to_journal: bool) {
    DEBUG_FORCED.store(debug, Ordering::Relaxed);
    let journald = to_journal
        || std::env::var_os("JOURNAL_STREAM")
            .is_some_and(|stream| sys::stderr_is(&stream.to_string_lossy()));
    TO_JOURNAL.store(journald, Ordering::Relaxed);
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
                let text = format!("{level:<5} {message}");
                out.finish(format_args!("{}", journal_lines(level, &text)))
            } else {
                let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
                out.finish(format_args!("{now} {program}: {level:<5} {message}"))
            }
        })
        .chain(output)
        .apply();
    if result.is_err() {
        say(
            log::Level::Warn,
            &format!("{program}: warning: logging was already set up"),
        );
    }
    set_log_level(log::LevelFilter::Info);
}

/// Whether log lines are shaped for the journal (see `init_logging`): the
/// watchdog then asks its picomon for the same.
pub fn logs_to_journal() -> bool {
    TO_JOURNAL.load(Ordering::Relaxed)
}

/// The syslog priority journald files a line of `level` under:
/// `journalctl -p warning` shows errors and warnings (PROBLEM lines).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `text` for the journal: each of its lines (a configuration error names
/// each problem on a ` -> ` line of its own) with the priority of `level`,
/// since journald files every line apart.
fn journal_lines(level: log::Level, text: &str) -> String {
    let priority = priority(level);
    text.split('\n')
        .map(|line| format!("<{priority}>{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A line of a child picomon's standard error as this process passes it
/// on to its own (see `pass_on`).
pub fn passed_on(line: &str) -> std::borrow::Cow<'_, str> {
    pass_on(line, TO_JOURNAL.load(Ordering::Relaxed))
}

/// Lines for the journal pass as they are: the child was asked for journal
/// lines (`--log-priorities`), so one without a priority is not one that
/// picomon logged but a panic or the C library's abort message, an error.
fn pass_on(line: &str, to_journal: bool) -> std::borrow::Cow<'_, str> {
    match to_journal && split_priority(line).is_none() {
        true => std::borrow::Cow::Owned(journal_lines(log::Level::Error, line)),
        false => std::borrow::Cow::Borrowed(line),
    }
}

/// A log line of another picomon process as it reads away from the
/// journal (the watchdog's mail): a journal line gives up its priority,
/// which only journald reads, and gets the time it `arrived`, which it
/// lacks; a plain line is left as it is.
pub fn readable_line(line: &str, arrived: std::time::SystemTime) -> String {
    match split_priority(line) {
        Some((_, text)) => format!("{} {text}", humantime::format_rfc3339_millis(arrived)),
        None => line.to_string(),
    }
}

/// A journal line without its `<N>` priority (journald's
/// SyslogLevelPrefix), and the priority; `None` for a line without one.
fn split_priority(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let (digit, rest) = rest.split_at_checked(1)?;
    let rest = rest.strip_prefix('>')?;
    let priority = digit.parse::<u8>().ok().filter(|p| *p <= 7)?;
    Some((priority, rest))
}

/// Sets the log level from the configuration, unless `-D` forced DEBUG.
pub fn set_log_level(level: log::LevelFilter) {
    if DEBUG_FORCED.load(Ordering::Relaxed) {
        log::set_max_level(log::LevelFilter::Debug.max(level));
    } else {
        log::set_max_level(level);
    }
}

/// One line on standard error at `level`, or nothing if it is gone
/// (`eprintln!` would panic); for the journal, with its priority.
fn say(level: log::Level, line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = if TO_JOURNAL.load(Ordering::Relaxed) {
        writeln!(stderr, "{}", journal_lines(level, line))
    } else {
        writeln!(stderr, "{line}")
    };
}

/// Prints an error and its causes the house way: `picomon: error: …`
/// then one ` -> cause` line each. Returns the exit code it deserves.
pub fn report_error(program: &str, err: &anyhow::Error) -> ExitCode {
    say(log::Level::Error, &format!("{program}: error: {err}"));
    for cause in err.chain().skip(1) {
        say(log::Level::Error, &format!(" -> {cause}"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_journal_line_gives_up_its_priority_and_other_lines_are_left_alone() {
        assert_eq!(
            split_priority("<4>WARN  c: PROBLEM"),
            Some((4, "WARN  c: PROBLEM"))
        );
        assert_eq!(
            split_priority("<3>picomon: error: x"),
            Some((3, "picomon: error: x"))
        );
        assert_eq!(split_priority("<7>"), Some((7, "")));
        for plain in [
            "2026-01-01T00:00:00.000Z picomon: INFO  started",
            "<8>not a priority",
            "<12>two digits",
            "<4 no bracket",
            "<>",
            "<",
            "",
            "<é>x",
        ] {
            assert_eq!(split_priority(plain), None, "{plain:?}");
        }
    }

    #[test]
    fn a_journal_line_in_the_mail_has_the_time_it_arrived_instead_of_its_priority() {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            readable_line("<4>WARN  c: PROBLEM CRITICAL on localhost", at),
            "2023-11-14T22:13:20.123Z WARN  c: PROBLEM CRITICAL on localhost"
        );
        let plain = "2023-11-14T22:13:20.123Z picomon: INFO  picomon started";
        assert_eq!(readable_line(plain, at), plain);
    }

    #[test]
    fn every_line_of_a_several_line_error_is_an_error_in_the_journal() {
        assert_eq!(
            journal_lines(
                log::Level::Error,
                "invalid configuration\n -> a.toml: x: unknown key"
            ),
            "<3>invalid configuration\n<3> -> a.toml: x: unknown key"
        );
        assert_eq!(journal_lines(log::Level::Info, "started"), "<6>started");
    }

    #[test]
    fn what_picomon_did_not_log_itself_reaches_the_journal_as_an_error() {
        let panic = "thread 'main' panicked at src/x.rs:1:1:";
        assert_eq!(pass_on(panic, true), format!("<3>{panic}"));
        assert_eq!(pass_on("<4>WARN  c: PROBLEM", true), "<4>WARN  c: PROBLEM");
        // Away from the journal, every line passes as it is.
        assert_eq!(pass_on(panic, false), panic);
    }

    #[test]
    fn warnings_and_errors_are_what_journalctl_p_warning_shows() {
        // journalctl -p warning shows priorities 0 to 4.
        assert!(priority(log::Level::Error) <= 4);
        assert!(priority(log::Level::Warn) <= 4);
        assert!(priority(log::Level::Info) > 4);
        assert!(priority(log::Level::Debug) > priority(log::Level::Info));
    }
}
