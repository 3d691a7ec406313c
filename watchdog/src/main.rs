//! `picomon-watchdog`: runs picomon, emails when it exits or hangs, and
//! starts it again with back-off. Its arguments are defined beside
//! picomon's (`picomon::cli::WatchdogCli`, for the man page and
//! completions). `supervisor.rs` is the loop that carries out what
//! `policy.rs` decides about the picomon child of `child.rs`.

mod child;
mod policy;
mod supervisor;
mod takeover;

use std::process::ExitCode;

use clap::Parser;

use picomon::cli::WatchdogCli;

fn main() -> ExitCode {
    let args = WatchdogCli::parse();
    picomon::init_logging("picomon-watchdog", args.common.debug, false);
    match supervisor::run(args) {
        Ok(code) => code,
        Err(err) => picomon::report_error("picomon-watchdog", &err),
    }
}
