//! Command-line definitions, kept apart from behaviour so that the man pages
//! and shell completions can be generated from exactly what users type.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The default main configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/picomon.toml";

/// A very small alerting daemon: runs monitoring plugins on a schedule and
/// emails when a check fails and when it recovers.
#[derive(Debug, Parser)]
#[command(name = "picomon", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of the daemon itself (no subcommand).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run every check once, now and in parallel, print the results and exit
    /// (0 when all are OK, 1 otherwise); sends no email.
    #[arg(short = '1', long = "one")]
    pub one: bool,

    /// With --one: print one JSON object per check instead of text.
    #[arg(long, requires = "one")]
    pub json: bool,

    /// A pipe to write a byte to after every tick (set by picomon-watchdog).
    #[arg(long, value_name = "FD", hide = true)]
    pub heartbeat_fd: Option<i32>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Main configuration file; fragments are read from the directory of
    /// the same name with `.d` instead of `.toml`.
    #[arg(short, long, value_name = "CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Log at DEBUG level, whatever `log_level` says.
    #[arg(short = 'D', long)]
    pub debug: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate every configuration layer, then print a summary.
    CheckConfig {
        /// Print the merged configuration as TOML instead of the summary.
        #[arg(long)]
        dump: bool,

        #[command(flatten)]
        common: CommonArgs,
    },
}
