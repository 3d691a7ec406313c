//! The state of every check as an operator reads it, failing ones first:
//! shared by SIGUSR1 and the global report mail.

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::check::{Instance, State};
use crate::human::{human_duration, human_time};
use crate::state::CheckState;

/// The state of every instance, failing ones first with since-when and
/// their last output, then the others: shared by SIGUSR1 and the reports.
pub fn render_states<'a>(
    entries: impl IntoIterator<Item = (&'a Instance, &'a CheckState)>,
    now: SystemTime,
) -> String {
    let entries: Vec<_> = entries.into_iter().collect();
    let (failing, others): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, s)| s.failing);
    let mut out = String::new();
    let _ = writeln!(out, "Failing checks: {}", failing.len());
    for (inst, state) in &failing {
        let since = state.since.unwrap_or(now);
        let for_how_long = human_duration(now.duration_since(since).unwrap_or_default());
        let severity = state
            .last
            .as_ref()
            .map(|r| r.state)
            .unwrap_or(State::Unknown);
        let _ = writeln!(
            out,
            "  {severity:<8} {} on {}: failing since {} ({for_how_long}, {} failed runs)",
            inst.check,
            inst.dest,
            human_time(since),
            state.failed_runs
        );
        if let Some(last) = &state.last {
            for line in last.output().lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let _ = writeln!(out, "Other checks: {}", others.len());
    for (inst, state) in &others {
        let status = match (&state.last, state.failed_runs) {
            (None, _) => "PENDING".to_string(),
            (Some(_), 0) => "OK".to_string(),
            (Some(last), n) => format!("{} (retrying, {n} failed runs)", last.state),
        };
        let _ = writeln!(out, "  {status:<8} {} on {}", inst.check, inst.dest);
    }
    out
}
