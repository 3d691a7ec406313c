//! The `picomon` binary: arguments, logging, then the library does the rest.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match picomon::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // A built-in plugin's usage error is UNKNOWN (3) in the plugin API;
        // clap's 2 would read as CRITICAL.
        Err(e) if e.use_stderr() && std::env::args_os().nth(1).is_some_and(|a| a == "plugin") => {
            let _ = e.print();
            return ExitCode::from(3);
        }
        Err(e) => e.exit(),
    };
    let debug = match &cli.command {
        Some(picomon::cli::Command::CheckConfig { common, .. }) => common.debug,
        Some(picomon::cli::Command::Status { common, .. }) => common.debug,
        Some(picomon::cli::Command::Ack { common, .. }) => common.debug,
        Some(picomon::cli::Command::Push { common, .. }) => common.debug,
        Some(picomon::cli::Command::Silence { action }) => match action {
            picomon::cli::SilenceAction::Add { common, .. }
            | picomon::cli::SilenceAction::List { common }
            | picomon::cli::SilenceAction::Remove { common, .. } => common.debug,
        },
        Some(picomon::cli::Command::Migrate { debug, .. }) => *debug,
        Some(picomon::cli::Command::Generate { .. }) => false,
        Some(picomon::cli::Command::Plugin { .. }) => false,
        None => cli.run.common.debug,
    };
    let to_journal = cli.command.is_none() && cli.run.log_priorities;
    picomon::init_logging("picomon", debug, to_journal);
    match picomon::run(cli) {
        Ok(code) => code,
        Err(err) => picomon::report_error("picomon", &err),
    }
}
