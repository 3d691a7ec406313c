//! One thread turns process signals into messages on the daemon's channel,
//! so that all the daemon's work happens in one loop and no logic runs in
//! a signal handler.

use std::io;

use signal_hook::consts::{SIGHUP, SIGUSR1};
use signal_hook::iterator::Signals;

/// The signals picomon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGUSR1: print the state of every check and tick now.
    Status,
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM or SIGINT: stop.
    Stop,
}

/// Starts the signal thread; `deliver` is called for each signal received.
pub fn spawn(deliver: impl Fn(Signal) + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new(crate::sys::CAUGHT_SIGNALS)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let signal = match sig {
                    SIGUSR1 => Signal::Status,
                    SIGHUP => Signal::Reload,
                    _ => Signal::Stop,
                };
                deliver(signal);
            }
        })?;
    Ok(())
}
