//! The state of every check as an operator reads it, failing ones first:
//! one `View`, taken by the daemon, rendered alike for SIGUSR1, the
//! global report mail and `picomon status` (which gets it as JSON over
//! the status socket, see `socket.rs`, and prints it as text or
//! as that JSON).

pub(crate) mod ack;
pub(crate) mod push;
pub(crate) mod socket;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::check::{Instance, State};
use crate::config::Config;
use crate::human::{escape_controls, escape_controls_keep_lines, human_duration, human_time};
use crate::silence::Silence;
use crate::state::CheckState;

/// The view's format version, for scripts reading `--json`.
const VIEW_VERSION: u32 = 1;

/// Nagios' UNKNOWN: no daemon answers for this configuration.
const EXIT_UNKNOWN: u8 = 3;

/// The daemon's live view of every instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct View {
    pub version: u32,
    /// The daemon's process id.
    pub pid: u32,
    /// When the view was taken, in seconds since the epoch.
    pub at: u64,
    /// Failing instances first (longest failing first), then the others
    /// by id.
    pub instances: Vec<InstanceView>,
    /// Set when picomon fell behind in the last minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub falling_behind: Option<crate::pace::Behind>,
    /// `[maintenance.NAME]`: each window, whether it is in force, and the
    /// next one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<crate::maintenance::WindowView>,
}

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Standing {
    /// Failing: its Problem is (or, silenced, would be) mailed.
    Failing,
    /// Failed runs, fewer than `retry + 1`.
    Retrying,
    Ok,
    /// Not run yet since picomon started.
    Pending,
}

/// One instance in the view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InstanceView {
    /// `NAME/HOST/FAMILY`.
    pub instance: String,
    /// The check's name.
    pub name: String,
    pub target: String,
    pub standing: Standing,
    /// The last run's state.
    pub severity: Option<State>,
    /// The first failed run of the current failed runs, in seconds since
    /// the epoch.
    pub since: Option<u64>,
    pub failed_runs: u32,
    /// When the last run started, in seconds since the epoch.
    pub last_run: Option<u64>,
    /// The last run's output (summary, then the other lines).
    pub output: Option<String>,
    /// The silence keeping its mail back.
    pub silenced: Option<SilenceMark>,
    /// The failing instance it depends on that holds its mails back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// Flapping: no switch mails until it is stable again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    /// `picomon ack` of the current outage: who, why, when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<crate::state::Ack>,
    /// The contacts told about it (`[contacts.NAME]`); empty: everyone
    /// (`emails.to` and every notifier).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub told: Vec<String>,
    /// Reminders mailed for the current outage (`renotify_every`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reminders: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A silence, as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SilenceMark {
    pub id: u64,
    pub until: u64,
    pub reason: String,
    /// The maintenance window silencing it (then `id` is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

impl View {
    /// The view of `entries` at `now`.
    pub(crate) fn new<'a>(
        entries: impl IntoIterator<Item = (&'a Instance, &'a CheckState, Option<&'a Silence>)>,
        now: SystemTime,
    ) -> View {
        let mut instances: Vec<InstanceView> = entries
            .into_iter()
            .map(|(inst, state, silence)| InstanceView {
                instance: inst.id.clone(),
                name: inst.check.clone(),
                target: inst.dest.clone(),
                standing: match (state.failing, state.failed_runs, &state.last) {
                    (true, _, _) => Standing::Failing,
                    (false, 0, None) => Standing::Pending,
                    (false, 0, Some(_)) => Standing::Ok,
                    (false, _, _) => Standing::Retrying,
                },
                severity: state.last.as_ref().map(|r| r.state),
                since: state.since.map(secs),
                failed_runs: state.failed_runs,
                last_run: state.last.as_ref().map(|r| secs(r.started)),
                output: state.last.as_ref().map(|r| r.output()),
                silenced: silence.map(|s| SilenceMark {
                    id: s.id,
                    until: s.until,
                    reason: s.reason.clone(),
                    window: s.window.clone(),
                }),
                held_by: state.held_by.clone(),
                flapping: state.flap.flapping,
                acked: state.acked().cloned(),
                told: Vec::new(),
                reminders: state.reminders,
            })
            .collect();
        // Stable: the others keep the order they came in (by id).
        instances.sort_by_key(|i| match i.standing {
            Standing::Failing => (0, i.since.unwrap_or(0)),
            _ => (1, 0),
        });
        View {
            version: VIEW_VERSION,
            pid: std::process::id(),
            at: secs(now),
            instances,
            falling_behind: None,
            maintenance: Vec::new(),
        }
    }

    pub(crate) fn any_failing(&self) -> bool {
        self.instances
            .iter()
            .any(|i| i.standing == Standing::Failing)
    }

    /// The view for people: failing instances with since-when, severity,
    /// silence and last output, then the others with their last run.
    pub(crate) fn render(&self) -> String {
        let now = time(self.at);
        let (failing, others): (Vec<_>, Vec<_>) = self
            .instances
            .iter()
            .partition(|i| i.standing == Standing::Failing);
        let mut out = String::new();
        if let Some(behind) = self.falling_behind {
            let _ = writeln!(out, "Falling behind in the last minute: {behind}");
        }
        let _ = writeln!(out, "Failing checks: {}", failing.len());
        for inst in &failing {
            let since = inst.since.map(time).unwrap_or(now);
            let for_how_long = human_duration(now.duration_since(since).unwrap_or_default());
            let severity = inst.severity.unwrap_or(State::Unknown);
            let _ = writeln!(
                out,
                "  {severity:<8} {}: failing since {} ({for_how_long}, {} failed runs){}",
                named(inst),
                human_time(since),
                inst.failed_runs,
                marks(inst)
            );
            // A plugin's output reaches a terminal (and the report mail)
            // here: its control characters are shown, not obeyed.
            let output = escape_controls_keep_lines(inst.output.as_deref().unwrap_or(""));
            for line in output.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
        let _ = writeln!(out, "Other checks: {}", others.len());
        for inst in &others {
            let status = match (inst.standing, inst.severity) {
                (Standing::Retrying, Some(severity)) => {
                    format!("{severity} (retrying, {} failed runs)", inst.failed_runs)
                }
                (Standing::Pending, _) => "PENDING".to_string(),
                _ => "OK".to_string(),
            };
            let last = match inst.last_run {
                Some(at) => format!(", last run {}", human_time(time(at))),
                None => String::new(),
            };
            let _ = writeln!(out, "  {status:<8} {}{last}{}", named(inst), marks(inst));
        }
        out.push_str(&crate::maintenance::render(&self.maintenance, now));
        out
    }
}

/// The marks after an instance's line: held, flapping, silenced.
fn marks(inst: &InstanceView) -> String {
    let mut out = String::new();
    if !inst.told.is_empty() {
        let _ = write!(out, " [told: {}]", inst.told.join(", "));
    }
    if let Some(parent) = &inst.held_by {
        let _ = write!(out, " [held: {parent} failing]");
    }
    if inst.flapping {
        out.push_str(" [flapping]");
    }
    if let Some(ack) = &inst.acked {
        let _ = write!(
            out,
            " [acknowledged by {} at {}: {}]",
            escape_controls(&ack.by),
            human_time(time(ack.at)),
            escape_controls(&ack.reason)
        );
    } else if inst.reminders > 0 {
        let _ = write!(out, " [{} reminders]", inst.reminders);
    }
    if let Some(s) = &inst.silenced {
        let by = match &s.window {
            Some(name) => format!("maintenance window {name}"),
            None => format!("silence {}", s.id),
        };
        let _ = write!(
            out,
            " [silenced until {} by {by}: {}]",
            human_time(time(s.until)),
            escape_controls(&s.reason)
        );
    }
    out
}

/// What `picomon status` prints when it has no view, and exits 3 with.
fn unknown(json: bool, reason: &str) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({ "running": false, "reason": reason })
        );
    } else {
        println!("UNKNOWN: {reason}");
    }
    ExitCode::from(EXIT_UNKNOWN)
}

/// `picomon status`: the running daemon's view of the configuration
/// `main`. Exits 0 when no instance is failing, 1 when one is, 3 when no
/// daemon answers (or there is no `state_dir` to find one by).
pub(crate) fn command(main: &Path, json: bool) -> anyhow::Result<ExitCode> {
    // Secrets are not read: whoever may ask for the status need not be
    // able to read the SMTP password.
    let config = Config::load_with(main, false)?;
    let Some(dir) = config.state_dir.as_deref() else {
        return Ok(unknown(
            json,
            &format!(
                "{}: state_dir is not set; picomon status finds the daemon through state_dir, so it needs one",
                main.display()
            ),
        ));
    };
    let view = match socket::query(dir) {
        Ok(view) => view,
        Err(e @ socket::NoView::NotRunning(_)) => {
            // Nothing runs: a configuration picomon would refuse (its
            // secrets included) is why, and is told as such, exit 78.
            if let Err(invalid) = Config::load(main) {
                return Err(anyhow::Error::new(invalid)
                    .context(format!("{e}, and {} would not start one", main.display())));
            }
            return Ok(unknown(json, &e.to_string()));
        }
        Err(e) => return Ok(unknown(json, &e.to_string())),
    };
    if json {
        println!("{}", serde_json::to_string(&view)?);
    } else {
        print!("{}", view.render());
    }
    Ok(if view.any_failing() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An instance as the list names it: its check, and the target when that
/// is not the check's own name again ("up", not "up on up"), as mails do.
fn named(inst: &InstanceView) -> String {
    match inst.name == inst.target {
        true => inst.name.clone(),
        false => format!("{} on {}", inst.name, inst.target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::RunResult;

    fn instance(id: &str) -> Instance {
        Instance {
            id: id.into(),
            check: id.split('/').next().unwrap_or(id).into(),
            dest: "web".into(),
            argv: vec!["/bin/true".into()],
            reading: crate::check::Reading::Nagios,
            pattern: None,
            every: 1,
            error_every: 1,
            retry: 0,
            timeout: Duration::from_secs(2),
            flap: crate::flapping::Limits::default(),
            renotify_every: None,
            env: Vec::new(),
        }
    }

    fn run(state: State, at: u64, summary: &str) -> RunResult {
        RunResult {
            state,
            exit_code: Some(0),
            summary: summary.into(),
            perfdata: String::new(),
            details: String::new(),
            duration: Duration::ZERO,
            started: time(at),
        }
    }

    #[test]
    fn failing_first_with_since_severity_silence_and_output_then_the_others() {
        let (ok, bad, new) = (
            instance("a/web/ipv4"),
            instance("b/web/ipv4"),
            instance("c/web/ipv4"),
        );
        let ok_state = CheckState {
            last: Some(run(State::Ok, 1000, "A OK")),
            ..CheckState::default()
        };
        let bad_state = CheckState {
            failed_runs: 3,
            since: Some(time(880)),
            failing: true,
            mailed: None,
            last: Some(run(State::Critical, 1000, "B CRITICAL - down")),
            ..CheckState::default()
        };
        let silence = Silence {
            id: 4,
            pattern: "b/*".into(),
            until: 4600,
            reason: "kernel upgrade".into(),
            created: 0,
            window: None,
        };
        let view = View::new(
            [
                (&ok, &ok_state, None),
                (&bad, &bad_state, Some(&silence)),
                (&new, &CheckState::default(), None),
            ],
            time(1000),
        );
        assert!(view.any_failing());
        assert_eq!(view.instances[0].instance, "b/web/ipv4");
        let text = view.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Failing checks: 1");
        assert_eq!(
            lines[1],
            "  CRITICAL b on web: failing since 1970-01-01T00:14:40Z (2m 00s, 3 failed runs) [silenced until 1970-01-01T01:16:40Z by silence 4: kernel upgrade]"
        );
        assert_eq!(lines[2], "      B CRITICAL - down");
        assert_eq!(lines[3], "Other checks: 2");
        assert_eq!(
            lines[4],
            "  OK       a on web, last run 1970-01-01T00:16:40Z"
        );
        assert_eq!(lines[5], "  PENDING  c on web");
        // The JSON round trip is what `picomon status` reads.
        let json = serde_json::to_string(&view).expect("json");
        assert!(json.contains("\"standing\":\"failing\""), "{json}");
        let back: View = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, view);
    }
}
