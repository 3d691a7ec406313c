//! `picomon -1`: every check once, now, results on standard output, no
//! email. For trying a configuration and for scripts (`--json`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::check::State;
use crate::config::Config;
use crate::human::escape_controls_keep_lines;
use crate::runner::Runner;
use crate::scheduler;
use crate::signals::{self, Signal};

pub(crate) fn run(config: &Config, runner: &Arc<Runner>, json: bool) -> anyhow::Result<ExitCode> {
    // Plugins live in their own process groups, so a Ctrl-C at the terminal
    // does not reach them: kill them ourselves and report what was cut.
    let stopper = Arc::clone(runner);
    signals::spawn(move |s| {
        if s == Signal::Stop {
            stopper.stop();
        }
    })
    .context("cannot install signal handlers")?;
    let results = scheduler::run_once(config, runner).context("cannot start plugin workers")?;
    let mut out = std::io::stdout().lock();
    let id_width = results.iter().map(|(i, _)| i.id.len()).max().unwrap_or(0);
    let dest_width = results.iter().map(|(i, _)| i.dest.len()).max().unwrap_or(0);
    let mut all_ok = true;
    for (instance, result) in &results {
        all_ok &= result.state == State::Ok;
        if json {
            let line = serde_json::json!({
                "name": instance.check,
                "instance": instance.id,
                "target": instance.dest,
                "state": result.state,
                "exit_code": result.exit_code,
                "duration": (result.duration.as_secs_f64() * 1000.0).round() / 1000.0,
                "output": result.output(),
                "perfdata": result.perfdata,
            });
            writeln!(out, "{line}")?;
            continue;
        }
        writeln!(
            out,
            "{:<id_width$}  {:<dest_width$}  {:<8}  {:.2} s",
            instance.id,
            instance.dest,
            result.state,
            result.duration.as_secs_f64()
        )?;
        if result.state != State::Ok {
            // The terminal shows a plugin's control characters, never obeys them.
            for line in escape_controls_keep_lines(&result.output()).lines() {
                writeln!(out, "    {line}")?;
            }
        }
    }
    out.flush()?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
