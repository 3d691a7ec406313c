//! picomon: runs monitoring plugins on a schedule and alerts when a check
//! fails and when it recovers. The library holds everything; the binaries
//! only parse arguments and report errors, and the watchdog reuses the
//! configuration loader.

mod ca_certs;
mod check;
pub mod cli;
pub mod config;
pub mod courier;
mod dead_mans_switch;
mod deadline_io;
mod depends;
mod digest;
pub mod files;
mod flapping;
mod generate;
pub mod host;
pub mod human;
mod logging;
pub mod mail;
mod maintenance;
mod migrate;
mod once;
mod pace;
mod pattern;
mod plugin;
mod push;
mod runner;
mod scheduler;
pub mod signals;
mod silence;
mod state;
mod state_store;
mod status;
pub mod sys;
mod tell;
mod throttle;

pub use logging::{
    init_logging, logs_to_journal, passed_on, readable_line, report_error, set_log_level, EX_CONFIG,
};

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use cli::{Cli, Command, SilenceAction};
use config::Config;

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Generate { dir }) => {
            generate::write_all(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Plugin { plugin }) => Ok(plugin::run(plugin)),
        Some(Command::Status { json, common }) => status::command(&common.config, json),
        Some(Command::Ack {
            pattern,
            reason,
            common,
        }) => status::ack::command(&common.config, &pattern, &reason),
        Some(Command::Push {
            name,
            exit,
            output,
            command,
            common,
        }) => status::push::command(&common.config, &name, exit, &output, &command),
        Some(Command::Silence { action }) => match action {
            SilenceAction::Add {
                pattern,
                duration,
                reason,
                common,
            } => silence::add(&common.config, &pattern, duration, &reason),
            SilenceAction::List { common } => silence::list(&common.config),
            SilenceAction::Remove { id, common } => silence::remove(&common.config, id),
        },
        Some(Command::Migrate { config, .. }) => migrate::command(&config),
        Some(Command::CheckConfig {
            dump,
            no_secrets,
            common,
        }) => {
            let config = Config::load_with(&common.config, !no_secrets)?;
            if dump {
                print!(
                    "{}",
                    config
                        .dump()
                        .context("cannot print the configuration as TOML")?
                );
            } else {
                println!("{}", config.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            // Before anything else opens a descriptor: a missing fd 3 must
            // fail here, not pass on a descriptor signal-hook just opened.
            let heartbeat = cli
                .run
                .heartbeat_fd
                .map(|fd| {
                    sys::claim_inherited_fd(fd).with_context(|| {
                        format!("--heartbeat-fd {fd}: not an open descriptor picomon may write to")
                    })
                })
                .transpose()?;
            let mut config = Config::load_for_daemon(&cli.run.common.config)?;
            set_log_level(config.log_level);
            let runner = Arc::new(runner::Runner::new());
            if cli.run.one {
                return once::run(&config, &runner, cli.run.json);
            }
            config.forget_source();
            sys::settle_allocator();
            let (tx, rx) = crossbeam_channel::unbounded();
            let signal_tx = tx.clone();
            signals::spawn(move |s| {
                let _ = signal_tx.send(scheduler::Msg::Signal(s));
            })
            .context("cannot install signal handlers")?;
            let main_file = cli.run.common.config.clone();
            let daemon = scheduler::Daemon::new(config, main_file, runner, (tx, rx), heartbeat)?;
            daemon.run()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
