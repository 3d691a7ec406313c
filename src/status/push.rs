//! `picomon push NAME`: tells the running daemon a push check's result
//! over the status socket (so only picomon's user and root may), or runs
//! `-- COMMAND ARGS…` and tells it when the run starts and how it ended.
//!
//! The wrapped command comes first: its output still reaches standard
//! output (a cron job mails it as before), picomon exits with its status,
//! and a daemon that cannot be told is a warning on standard error, never
//! a reason not to run the job.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::socket;
use crate::config::Config;
use crate::push::{tail, Report, OUTPUT_CAP};

/// `picomon push NAME [--exit CODE] [--output TEXT]`, or with `command`,
/// `picomon push NAME -- COMMAND ARGS…`.
pub(crate) fn command(
    main: &Path,
    check: &str,
    exit: i32,
    output: &str,
    command: &[OsString],
) -> anyhow::Result<ExitCode> {
    // As `picomon status`: whoever may push need not read the secrets.
    let config = Config::load_with(main, false)?;
    let Some(dir) = config.state_dir.clone() else {
        anyhow::bail!(
            "{}: state_dir is not set; picomon push finds the daemon through state_dir, so it needs one",
            main.display()
        );
    };
    if command.is_empty() {
        let said = socket::push(
            &dir,
            check,
            Report::Done {
                exit,
                output: tail(output).to_string(),
            },
        )
        .map_err(|e| anyhow::anyhow!("{check}: not recorded: {e}"))?;
        println!("{check}: {said}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = socket::push(&dir, check, Report::Start) {
        eprintln!("picomon: warning: {check}: the run's start was not recorded: {e}");
    }
    let (code, status, output) = run(command)?;
    let report = Report::Done { exit: code, output };
    if let Err(e) = socket::push(&dir, check, report) {
        eprintln!("picomon: warning: {check}: the run's result was not recorded: {e}");
    }
    Ok(ExitCode::from(status))
}

/// Runs `argv`, its output (standard error merged) passed through to
/// standard output and its tail kept; returns the exit code to report,
/// the status to exit with, and the tail.
fn run(argv: &[OsString]) -> anyhow::Result<(i32, u8, String)> {
    let program = argv[0].to_string_lossy().into_owned();
    let (mut reader, writer) = os_pipe::pipe().context("cannot make a pipe for its output")?;
    let writer2 = writer
        .try_clone()
        .context("cannot make a pipe for its output")?;
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .with_context(|| format!("{program}: cannot start it"))?;
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut out = std::io::stdout();
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let _ = out.write_all(&chunk[..n]);
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * OUTPUT_CAP {
                    kept.drain(..kept.len() - OUTPUT_CAP);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = out.flush();
    let status = child
        .wait()
        .with_context(|| format!("{program}: cannot wait for it"))?;
    let mut text = tail(&String::from_utf8_lossy(&kept)).to_string();
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => (code, u8::try_from(code).unwrap_or(1), text),
        (None, signal) => {
            let signal = signal.unwrap_or_default();
            text = format!("{program} killed by signal {signal}\n{text}");
            (
                2,
                128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
                text,
            )
        }
    })
}
