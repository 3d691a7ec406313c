//! `picomon migrate CONFIG.py`: a picomon.py configuration as picomon TOML.
//! The file is Python, so python3 evaluates it against stand-ins for
//! picomon.py's modules (`standin.py`, shipped inside the binary) and
//! describes what it built as JSON; `translate` turns that into TOML. The
//! evaluation is bounded (time, output, description size) and runs in a
//! private directory of its own that is removed afterwards.

mod description;
mod translate;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::files::{self, Links};
use crate::runner::{RunError, Runner};

use description::Description;

/// The stand-ins and the driver that evaluates the config against them.
const STANDIN: &str = include_str!("standin.py");
/// A config file is evaluated in well under a second; one that takes
/// longer loops or waits on something, and is stopped.
const EVALUATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest config file read (for quoting its lines in comments) and
/// the largest description read back.
const SOURCE_CAP: u64 = 4 << 20;
const DESCRIPTION_CAP: u64 = 64 << 20;
/// The lines of python3's standard error shown when the evaluation fails.
const STDERR_LINES: usize = 15;

/// Prints the TOML for `config` on standard output and what did not carry
/// over on standard error.
pub(crate) fn command(config: &Path) -> anyhow::Result<ExitCode> {
    let (source, _) = files::read_regular(config, SOURCE_CAP, Links::Follow)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
    let source = String::from_utf8_lossy(&source).into_owned();
    let description = evaluate(config)?;
    let translation = translate::translate(&description, &source);
    let mut out = io::stdout().lock();
    out.write_all(translation.toml.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the TOML to standard output")?;
    for warning in &translation.warnings {
        eprintln!("picomon: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `config` under python3 against the stand-ins and reads back what
/// it built.
fn evaluate(config: &Path) -> anyhow::Result<Description> {
    let config = fs::canonicalize(config)
        .with_context(|| format!("{}: cannot resolve its path", config.display()))?;
    let dir = Scratch::new().with_context(|| {
        format!(
            "cannot make a private directory for the evaluation in {} (TMPDIR)",
            std::env::temp_dir().display()
        )
    })?;
    let script = dir.path.join("picomon_migrate.py");
    let out = dir.path.join("description.json");
    write_new(&script, STANDIN.as_bytes())
        .with_context(|| format!("cannot write {}", script.display()))?;
    let argv: Vec<OsString> = vec![
        "python3".into(),
        // Isolated: no PYTHON* variable, no user site, neither the current
        // nor the script's directory on the path; -S: no site-packages
        // (a config has only the standard library and its own directory);
        // -B: no bytecode left beside the config's imports.
        "-I".into(),
        "-S".into(),
        "-B".into(),
        script.into_os_string(),
        config.clone().into_os_string(),
        out.clone().into_os_string(),
    ];
    let runner = Arc::new(Runner::new());
    let finished = match runner.run(&argv, EVALUATION_TIMEOUT, &[]) {
        Ok(f) => f,
        Err(RunError::Spawn(e)) if e.kind() == io::ErrorKind::NotFound => bail!(
            "python3 not found on PATH: picomon migrate runs {} with python3, as picomon.py did \
             (on Debian: apt install python3-minimal)",
            config.display()
        ),
        Err(RunError::Spawn(e)) => {
            return Err(e).context("cannot start python3 to evaluate the configuration")
        }
        Err(RunError::Wait(e)) => return Err(e).context("cannot watch python3"),
    };
    let stderr = tail(&finished.stderr, STDERR_LINES);
    if finished.timed_out {
        bail!(
            "{}: python3 did not finish evaluating it within {} s (stopped){stderr}",
            config.display(),
            EVALUATION_TIMEOUT.as_secs()
        );
    }
    if finished.exit_code != Some(0) {
        let status = match (finished.exit_code, finished.signal) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "an unknown status".to_string(),
        };
        bail!(
            "{}: python3 failed to evaluate it as picomon.py would ({status}){stderr}",
            config.display()
        );
    }
    let (bytes, _) = files::read_regular(&out, DESCRIPTION_CAP, Links::Refuse)
        .map_err(|e| anyhow::anyhow!("{}: the evaluation's description: {e}", config.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: the evaluation's description is not what picomon migrate writes",
            config.display()
        )
    })
}

/// The last `lines` lines of `stderr`, each on a line of its own after a
/// newline, control characters escaped; empty when there are none.
fn tail(stderr: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(stderr);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = all.len().saturating_sub(lines);
    let mut out = String::new();
    for line in &all[start..] {
        let line: String = line.chars().take(300).collect();
        out.push_str("\n    ");
        out.push_str(&crate::human::escape_controls(&line));
    }
    out
}

/// Creates `path` (which must not exist), 0600, with `bytes`.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// A fresh 0700 directory in the temporary directory, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> io::Result<Scratch> {
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        for attempt in 0..16u32 {
            let path = base.join(format!(
                "picomon-migrate-{}-{nanos:x}-{attempt}",
                std::process::id()
            ));
            // create, not create_all: a name someone else made is not ours.
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free name")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests;
