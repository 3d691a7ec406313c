//! `picomon-watchdog`: runs picomon, emails when it exits or hangs, and
//! starts it again with back-off. Arguments and logging here; the
//! supervision loop is in `supervisor.rs`.

mod supervisor;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Runs picomon with the same arguments, emails the addresses of its
/// configuration when picomon exits or stops answering, and starts it
/// again (back-off from 1 s doubling to 5 min).
#[derive(Debug, Parser)]
#[command(name = "picomon-watchdog", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: picomon::cli::CommonArgs,

    /// Consider picomon hung when it reports no tick for this many seconds
    /// [default: 3 × base_tick, at least 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub hang_timeout: Option<Duration>,

    /// The picomon to run [default: the one next to this program, else the
    /// one on PATH].
    #[arg(long, value_name = "PATH")]
    pub picomon: Option<PathBuf>,

    /// More arguments for picomon, after `--`.
    #[arg(last = true, value_name = "PICOMON_ARGS")]
    pub rest: Vec<OsString>,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    picomon::init_logging("picomon-watchdog", args.common.debug);
    match supervisor::run(args) {
        Ok(code) => code,
        Err(err) => picomon::report_error("picomon-watchdog", &err),
    }
}
