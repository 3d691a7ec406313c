//! One plugin run being watched: its process, pidfd and pipes, and what
//! its clock says (the timeout, the drain grace after it exited). Shared
//! by the thread that starts a run and the loop that watches it, so it
//! stands below both.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use super::capture::Stream;
use super::{Finished, RunError};
use crate::sys;

/// How long pipes may stay open after the plugin's group was killed; only a
/// process that escaped the group (`setsid`) can hold them longer.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A plugin started and not yet reaped.
pub(super) struct Running {
    pub(super) pid: i32,
    /// Until the plugin exits: then it is closed, which also takes it out
    /// of the epoll set.
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) out: Stream,
    pub(super) err: Stream,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
    pub(super) exited_at: Option<Instant>,
    pub(super) timed_out: bool,
    pub(super) held_open: bool,
}

impl Running {
    /// The plugin exited: whatever it left in its group goes with it.
    pub(super) fn exited(&mut self, now: Instant) {
        if self.exited_at.is_none() {
            self.exited_at = Some(now);
            sys::kill_group(self.pid);
            self.pidfd = None;
        }
    }

    /// When the clock alone has something to say about this run: its
    /// timeout, or how long its pipes may stay open after it exited.
    pub(super) fn next_timer(&self) -> Option<Instant> {
        match self.exited_at {
            None if self.timed_out => None,
            None => Some(self.deadline),
            Some(_) if self.out.fd.is_none() && self.err.fd.is_none() => None,
            Some(at) => Some(at + DRAIN_GRACE),
        }
    }

    /// Kills the group at the timeout; after the plugin exited, stops
    /// reading pipes that only a process outside the group (`setsid`) can
    /// still hold open.
    pub(super) fn on_clock(&mut self, now: Instant) {
        match self.exited_at {
            None if !self.timed_out && now >= self.deadline => {
                self.timed_out = true;
                sys::kill_group(self.pid);
            }
            Some(at)
                if now >= at + DRAIN_GRACE && (self.out.fd.is_some() || self.err.fd.is_some()) =>
            {
                self.held_open = true;
                self.out.fd = None;
                self.err.fd = None;
            }
            _ => {}
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.exited_at.is_some() && self.out.fd.is_none() && self.err.fd.is_none()
    }

    /// Reaps the plugin, which has exited and whose group was forgotten.
    pub(super) fn finish(self) -> Result<Finished, RunError> {
        // It has exited: the wait returns at once.
        let status = sys::wait_child(self.pid).map_err(RunError::Wait)?;
        let status = std::process::ExitStatus::from_raw(status);
        let exited_at = self.exited_at.unwrap_or_else(Instant::now);
        Ok(Finished {
            escaped: Vec::new(),
            output_held_open: self.held_open,
            exit_code: if self.timed_out { None } else { status.code() },
            signal: status.signal(),
            timed_out: self.timed_out,
            stdout: self.out.into_bytes(),
            stderr: self.err.into_bytes(),
            duration: exited_at - self.started,
        })
    }
}
