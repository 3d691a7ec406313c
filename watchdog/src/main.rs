//! `picomon-watchdog`: runs picomon, emails when it exits, starts it again.
//! For now it only takes picomon's arguments; supervision comes next.

use std::process::ExitCode;

use clap::Parser;

/// Runs picomon with the same arguments, emails when it stops and starts
/// it again.
#[derive(Debug, Parser)]
#[command(name = "picomon-watchdog", version, about)]
struct Args {
    #[command(flatten)]
    common: picomon::cli::CommonArgs,

    /// Arguments passed to picomon as they are.
    #[arg(last = true, value_name = "PICOMON_ARGS")]
    rest: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    picomon::init_logging("picomon-watchdog", args.common.debug);
    log::error!("picomon-watchdog does not supervise picomon yet");
    ExitCode::FAILURE
}
