//! The `picomon` binary: arguments, logging, then the library does the rest.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = picomon::cli::Cli::parse();
    let debug = match &cli.command {
        Some(picomon::cli::Command::CheckConfig { common, .. }) => common.debug,
        Some(picomon::cli::Command::Generate { .. }) => false,
        None => cli.run.common.debug,
    };
    picomon::init_logging("picomon", debug);
    match picomon::run(cli) {
        Ok(code) => code,
        Err(err) => picomon::report_error("picomon", &err),
    }
}
