//! Push checks (`type = "push"`): picomon does not run them, it is told
//! their results, by `picomon push` over the status socket or by `POST
//! /push/NAME` (`listen`), and fails them when no result came for
//! `period` + `grace`. A missed push is one more failed run of the check,
//! so retries, digests, silences, dependencies, notifiers, the status and
//! the saved state treat it as any other failure.
//!
//! Everything here is pure (a report and the clock in, a result or a
//! verdict out), so the daemon loop has one place that carries it out and
//! every deadline is unit-tested without waiting for it.

pub(crate) mod listen;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::check::{split_output, RunResult, State};
use crate::human::human_time;

/// The longest output a push keeps (the tail of it): a mail and the
/// state show a summary and some lines, not a backup's whole log.
pub(crate) const OUTPUT_CAP: usize = 16 * 1024;

/// A push check as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// A push is expected at least this often (`period`).
    pub(crate) period: Duration,
    /// And may be this late before it counts as missed (`grace`).
    pub(crate) grace: Duration,
    /// The bearer token pushes over HTTP must give (`token_file`); None:
    /// only `picomon push` over the status socket may push.
    pub(crate) token_file: Option<PathBuf>,
}

/// `grace` when a push check does not set it: a tenth of the period, so a
/// nightly job may be 2 h 24 min late and one every 5 minutes 30 s.
pub(crate) fn default_grace(period: Duration) -> Duration {
    period / 10
}

/// What the daemon knows of a push check's pushes; saved in state.json,
/// so that a restart neither forgets the last push nor restarts the
/// clock of a check that was never pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pushed {
    /// When the last result came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<SystemTime>,
    /// When a run (`picomon push NAME -- COMMAND`) said it started and has
    /// not reported since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<SystemTime>,
    /// When picomon began expecting pushes: the clock of a check never
    /// pushed starts there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched: Option<SystemTime>,
}

/// What a pusher says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub(crate) enum Report {
    /// A run started: it is not missed while it goes on, up to `period`.
    Start,
    /// A result: the Nagios exit code and the output (its tail).
    Done { exit: i32, output: String },
}

/// Nagios codes, as `--exit` and `?exit=` take them: 0 OK, 1 WARNING, 2
/// CRITICAL, 3 UNKNOWN, and any other non-zero code CRITICAL (a cron job
/// that exits 127 or 255 failed; it is not "unknown").
pub(crate) fn state_of(exit: i32) -> State {
    match exit {
        0 => State::Ok,
        1 => State::Warning,
        3 => State::Unknown,
        _ => State::Critical,
    }
}

/// The last `OUTPUT_CAP` bytes of `text`, cut at a character boundary:
/// the end of a job's output is where it says how it ended.
pub(crate) fn tail(text: &str) -> &str {
    if text.len() <= OUTPUT_CAP {
        return text;
    }
    let mut at = text.len() - OUTPUT_CAP;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

/// The result a pushed report is recorded as.
pub(crate) fn result_of(exit: i32, output: &str, now: SystemTime) -> RunResult {
    let state = state_of(exit);
    let (mut summary, perfdata, details) = split_output(tail(output));
    if summary.is_empty() {
        summary = format!("pushed {state} (exit code {exit})");
    }
    RunResult {
        state,
        exit_code: Some(exit),
        summary,
        perfdata,
        details,
        duration: Duration::ZERO,
        started: now,
    }
}

/// What `report` changes in `pushed`, received at `now`.
pub(crate) fn note(pushed: &mut Pushed, report: &Report, now: SystemTime) {
    match report {
        Report::Start => pushed.running = Some(now),
        Report::Done { .. } => {
            pushed.last = Some(now);
            pushed.running = None;
        }
    }
}

/// When the check counts as missed: `period` + `grace` after the last
/// push (or after picomon began watching); a run that started since then
/// holds it off up to `period` after its start, so that a long run is not
/// missed and a hung one is. None before anything is known.
pub(crate) fn deadline(pushed: &Pushed, rule: &Rule) -> Option<SystemTime> {
    let base = pushed.last.or(pushed.watched)?;
    let due = base + rule.period + rule.grace;
    match pushed.running {
        Some(start) if start >= base => Some(due.max(start + rule.period)),
        _ => Some(due),
    }
}

/// The failed result of a check whose push is overdue at `now`, or None
/// while it is not.
pub(crate) fn missed(pushed: &Pushed, rule: &Rule, now: SystemTime) -> Option<RunResult> {
    let due = deadline(pushed, rule)?;
    if now <= due {
        return None;
    }
    let mut summary = match (pushed.last, pushed.watched) {
        (Some(last), _) => format!(
            "no push for {} (last at {})",
            rough(now.duration_since(last).unwrap_or_default()),
            human_time(last)
        ),
        (None, Some(watched)) => format!(
            "no push for {} (none since picomon began watching at {})",
            rough(now.duration_since(watched).unwrap_or_default()),
            human_time(watched)
        ),
        (None, None) => return None,
    };
    if let Some(start) = pushed
        .running
        .filter(|s| pushed.last.map_or(true, |l| *s >= l))
    {
        summary.push_str(&format!(
            "; a run started at {} has not ended",
            human_time(start)
        ));
    }
    Some(RunResult {
        state: State::Critical,
        exit_code: None,
        summary,
        perfdata: String::new(),
        details: String::new(),
        duration: Duration::ZERO,
        started: now,
    })
}

/// A duration in its two largest units, as a person says it: `1d 1h`,
/// `3h 05m`, `5m 10s`, `40s`.
fn rough(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{days}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn rule() -> Rule {
        Rule {
            period: Duration::from_secs(86_400),
            grace: Duration::from_secs(3_600),
            token_file: None,
        }
    }

    #[test]
    fn a_push_is_missed_only_after_period_and_grace() {
        let pushed = Pushed {
            last: Some(at(0)),
            ..Pushed::default()
        };
        assert!(missed(&pushed, &rule(), at(86_400 + 3_600)).is_none());
        let result = missed(&pushed, &rule(), at(90_001)).expect("missed");
        assert_eq!(result.state, State::Critical);
        assert_eq!(
            result.summary,
            "no push for 1d 1h (last at 2023-11-14T22:13:20Z)"
        );
    }

    #[test]
    fn a_check_never_pushed_counts_from_when_picomon_began_watching() {
        let mut pushed = Pushed::default();
        assert!(missed(&pushed, &rule(), at(1_000_000)).is_none());
        pushed.watched = Some(at(0));
        assert!(missed(&pushed, &rule(), at(90_000)).is_none());
        let result = missed(&pushed, &rule(), at(90_001)).expect("missed");
        assert!(result.summary.starts_with("no push for 1d 1h (none since"));
    }

    #[test]
    fn a_run_going_on_is_not_missed_and_one_hanging_past_period_is() {
        let mut pushed = Pushed {
            last: Some(at(0)),
            ..Pushed::default()
        };
        // Started just before its deadline: held off up to a period.
        note(&mut pushed, &Report::Start, at(90_000));
        assert!(missed(&pushed, &rule(), at(90_000 + 86_400)).is_none());
        let hung = missed(&pushed, &rule(), at(90_001 + 86_400)).expect("hung");
        assert!(hung.summary.contains("has not ended"), "{}", hung.summary);
        // Its end clears the run and restarts the clock.
        note(
            &mut pushed,
            &Report::Done {
                exit: 0,
                output: String::new(),
            },
            at(100_000),
        );
        assert_eq!(pushed.running, None);
        assert!(missed(&pushed, &rule(), at(100_000 + 90_000)).is_none());
    }

    #[test]
    fn exit_codes_are_nagios_and_any_other_failure_is_critical() {
        assert_eq!(state_of(0), State::Ok);
        assert_eq!(state_of(1), State::Warning);
        assert_eq!(state_of(2), State::Critical);
        assert_eq!(state_of(3), State::Unknown);
        assert_eq!(state_of(127), State::Critical);
        assert_eq!(state_of(-1), State::Critical);
        let r = result_of(2, "BACKUP CRITICAL - disk full|used=100%\nmore", at(0));
        assert_eq!(r.summary, "BACKUP CRITICAL - disk full");
        assert_eq!(r.perfdata, "used=100%");
        assert_eq!(r.details, "more");
        assert_eq!(result_of(0, "", at(0)).summary, "pushed OK (exit code 0)");
    }

    #[test]
    fn only_the_tail_of_a_long_output_is_kept_whole_characters() {
        let long = format!("{}é{}", "x".repeat(OUTPUT_CAP), "end");
        let t = tail(&long);
        assert!(t.len() <= OUTPUT_CAP);
        assert!(t.ends_with("éend"));
    }
}
