//! picomon: runs monitoring plugins on a schedule and alerts when a check
//! fails and when it recovers. The library holds everything; the binaries
//! only parse arguments and report errors, and the watchdog reuses the
//! configuration loader.

pub mod check;
pub mod cli;
pub mod config;
pub mod files;
mod generate;
pub mod host;
pub mod human;
pub mod mail;
mod once;
pub mod plugin;
pub mod runner;
pub mod scheduler;
pub mod signals;
pub mod state;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use cli::{Cli, Command};
use config::Config;

/// EX_CONFIG from sysexits.h: the configuration is invalid.
pub const EX_CONFIG: u8 = 78;

static DEBUG_FORCED: AtomicBool = AtomicBool::new(false);

/// Logs to standard error. Under journald (`JOURNAL_STREAM` set) lines get
/// a syslog priority prefix instead of a timestamp, since journald adds
/// its own.
pub fn init_logging(program: &'static str, debug: bool) {
    DEBUG_FORCED.store(debug, Ordering::Relaxed);
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let result = fern::Dispatch::new()
        .level(log::LevelFilter::Trace)
        .format(move |out, message, record| {
            let level = record.level();
            if journald {
                let priority = match level {
                    log::Level::Error => 3,
                    log::Level::Warn => 4,
                    log::Level::Info => 6,
                    log::Level::Debug | log::Level::Trace => 7,
                };
                out.finish(format_args!("<{priority}>{level:<5} {message}"))
            } else {
                let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
                out.finish(format_args!("{now} {program}: {level:<5} {message}"))
            }
        })
        .chain(std::io::stderr())
        .apply();
    if result.is_err() {
        eprintln!("{program}: warning: logging was already set up");
    }
    set_log_level(log::LevelFilter::Info);
}

/// Sets the log level from the configuration, unless `-D` forced DEBUG.
pub fn set_log_level(level: log::LevelFilter) {
    if DEBUG_FORCED.load(Ordering::Relaxed) {
        log::set_max_level(log::LevelFilter::Debug.max(level));
    } else {
        log::set_max_level(level);
    }
}

/// Prints an error and its causes the house way: `picomon: error: …`
/// then one ` -> cause` line each. Returns the exit code it deserves.
pub fn report_error(program: &str, err: &anyhow::Error) -> ExitCode {
    eprintln!("{program}: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!(" -> {cause}");
    }
    if err
        .chain()
        .any(|c| c.downcast_ref::<config::ConfigError>().is_some())
    {
        ExitCode::from(EX_CONFIG)
    } else {
        ExitCode::FAILURE
    }
}

/// glibc gives each thread its own malloc arena, and each keeps freed
/// memory around: with `max_parallel` workers that is most of a small
/// daemon's memory. Workers allocate little, so two arenas are plenty;
/// and what parsing the configuration freed goes back to the system.
/// Called once the configuration is loaded, before any worker starts.
fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before workers start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Give back what parsing the configuration used and freed.
        libc::malloc_trim(0);
    }
}

/// The pipe the watchdog handed over for heartbeats, made non-blocking.
fn heartbeat_file(fd: i32) -> anyhow::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl only queries and sets flags of `fd`; it fails cleanly
    // when `fd` is not open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fd < 3
        || flags < 0
        || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        anyhow::bail!("--heartbeat-fd {fd}: not an open descriptor picomon may write to");
    }
    // Plugins must not inherit it: they would keep the pipe open after
    // picomon died, hiding the death from the watchdog.
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open, and picomon's arguments hand it over.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Generate { dir }) => {
            generate::write_all(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Plugin { plugin }) => Ok(plugin::run(plugin)),
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
            let config = Config::load(&cli.run.common.config)?;
            set_log_level(config.log_level);
            let runner = Arc::new(runner::Runner::new());
            if cli.run.one {
                return once::run(&config, &runner, cli.run.json);
            }
            settle_allocator();
            let (tx, rx) = crossbeam_channel::unbounded();
            let signal_tx = tx.clone();
            signals::spawn(move |s| {
                let _ = signal_tx.send(scheduler::Msg::Signal(s));
            })
            .context("cannot install signal handlers")?;
            let heartbeat = cli.run.heartbeat_fd.map(heartbeat_file).transpose()?;
            let main_file = cli.run.common.config.clone();
            let daemon = scheduler::Daemon::new(config, main_file, runner, (tx, rx), heartbeat)?;
            daemon.run()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
