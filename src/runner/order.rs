//! A run ordered: the slot and serial its descriptors are added to the
//! watch loop's epoll under, and how it is launched. Whoever launches it,
//! a spawner thread or the loop itself, adds its descriptors under the
//! slot's key, so this stands below both.

use std::os::fd::AsRawFd;

use super::running::Running;
use super::spawn::give_up;
use super::{Launch, RunError, Runner};
use crate::sys;

/// Where an epoll key points: a run's slot, the start count that tells
/// this run from a later one in the same slot, and which descriptor.
pub(super) const KEY_PIDFD: u64 = 0;
pub(super) const KEY_STDOUT: u64 = 1;
pub(super) const KEY_STDERR: u64 = 2;

pub(super) fn key(serial: u32, slot: usize, which: u64) -> u64 {
    (u64::from(serial) << 32) | ((slot as u64) << 2) | which
}

/// A run to start, with the slot and serial its descriptors are added
/// to the epoll under.
pub(super) struct Order<T> {
    pub(super) slot: usize,
    pub(super) serial: u32,
    pub(super) payload: T,
}

impl<T: Launch> Order<T> {
    /// Starts the run and adds its descriptors to `epoll`.
    pub(super) fn launch(&self, runner: &Runner, epoll: &sys::Epoll) -> Result<Running, RunError> {
        let p = &self.payload;
        let run = runner.start(p.argv(), p.timeout(), p.env())?;
        let mut fds = [
            (run.pidfd.as_ref().map(AsRawFd::as_raw_fd), KEY_PIDFD),
            (run.out.fd.as_ref().map(AsRawFd::as_raw_fd), KEY_STDOUT),
            (run.err.fd.as_ref().map(AsRawFd::as_raw_fd), KEY_STDERR),
        ]
        .into_iter();
        let added = fds.try_for_each(|(fd, which)| match fd {
            Some(fd) => epoll.add_edge_triggered(fd, key(self.serial, self.slot, which)),
            None => Ok(()),
        });
        match added {
            Ok(()) => Ok(run),
            // Its descriptors close with it, which takes them out of epoll.
            Err(e) => Err(give_up(runner, run.pid, e)),
        }
    }
}
