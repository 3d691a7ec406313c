//! Leftovers: picomon is the subreaper of what plugins leave behind. A
//! process that escaped its plugin's group with `setsid` becomes a child
//! of picomon's main thread (the kernel hands orphans to the first thread
//! of the reaper), where plugins themselves never are, since other threads
//! start them; it is killed and reaped after the run, and at stop.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use super::Runner;
use crate::sys;

impl Runner {
    /// At stop: kills and reaps whatever plugins left behind that no run
    /// is watching any more.
    pub(crate) fn sweep(&self) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for pid in sys::children() {
            if !groups.contains(&pid) {
                sys::kill_child(pid);
                sys::reap_child(pid);
            }
        }
    }

    /// Kills and reaps the main thread's children after the runs of
    /// plugins `leaders` (already reaped): orphans of plugins, which the
    /// subreaper setting handed to us. Those outside the plugins' groups
    /// had escaped them (`setsid`); they are returned for the log (with
    /// several plugins ending at once, one may be blamed for another's).
    /// Members of those groups were already killed with them and are only
    /// reaped; living members of a plugin still running are its own.
    pub(super) fn kill_leftovers(&self, leaders: &[i32]) -> Vec<String> {
        // One scan at a time: two loops (the old and the new one, for a
        // moment after a reload) must not both kill and reap one pid (the
        // second kill could hit a reused one).
        // The main thread's list of children, opened once: read from its
        // start after every run, it is one system call where opening it
        // by name was three and a path walk.
        static SCAN: Mutex<Option<File>> = Mutex::new(None);
        let mut scan = SCAN.lock().unwrap_or_else(|e| e.into_inner());
        if scan.is_none() {
            let main_thread = std::process::id();
            *scan = File::open(format!("/proc/self/task/{main_thread}/children")).ok();
        }
        let Some(list) = scan.as_ref().and_then(read_from_start) else {
            return Vec::new();
        };
        let mut escaped = Vec::new();
        for pid in list
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `PID (COMM) STATE PPID PGRP …`; COMM may hold anything but
            // ends at the last ')'.
            let (comm, rest) = match (stat.find('('), stat.rfind(')')) {
                (Some(open), Some(close)) if open < close => {
                    (&stat[open + 1..close], &stat[close + 1..])
                }
                _ => ("?", ""),
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("");
            let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
            if state != "Z" {
                let running = {
                    let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
                    pgrp.is_some_and(|g| groups.contains(&g))
                };
                if running {
                    continue;
                }
                if !pgrp.is_some_and(|g| leaders.contains(&g)) {
                    escaped.push(format!("{pid} ({comm})"));
                }
            }
            sys::kill_child(pid);
            // A process just killed may take a moment to become a zombie;
            // what is not reaped now is reaped after a later run.
            sys::reap_child(pid);
        }
        escaped
    }
}

/// The whole of a /proc file kept open, read again from offset 0 (the
/// kernel makes its text anew for a read there).
fn read_from_start(file: &File) -> Option<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read_at(&mut buf, text.len() as u64) {
            Ok(0) => return String::from_utf8(text).ok(),
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}
