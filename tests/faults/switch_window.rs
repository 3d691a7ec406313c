//! A kill between spooling an alert and saving its switch (issue 8): the
//! alert is left `.pending` in the spool, and the next start sends it if
//! the saved state has its switch and drops it otherwise (the check tells
//! it again). Either way one Problem and one OK arrive, in one thread.
//! The kill is staged: picomon is stopped with the alert spooled, then the
//! spool and state are put back as the kill would have left them.

use std::path::{Path, PathBuf};

use crate::campaign::{Mailroom, LONG};
use crate::harness::{mail_config, wait_for, Daemon, Site};
use crate::held_port::HeldPort;

/// The state file and its copy, both written at every save.
const STATE_FILES: [&str; 2] = ["state/state.json", "state/state.json.backup"];

/// One check, `db`, failing while the flag file exists; state in `state/`.
fn db_site(port: u16) -> Site {
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &mail_config(
            port,
            &site.path("state"),
            "smtp_retry_timeout = 0.5\n",
            &format!(
                r#"
                    [checks.db]
                    type = "command"
                    command = ["{plugin}"]
                "#
            ),
        ),
    );
    site
}

fn spool_files(site: &Site) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(site.path("state/outbox"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn message_id(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a spooled mail");
    let mail: serde_json::Value = serde_json::from_str(&text).expect("a spooled mail");
    mail["message_id"].as_str().unwrap_or_default().to_string()
}

/// Stops `daemon` cleanly with one alert spooled, and leaves that alert
/// pending: as if picomon had been killed before it was released.
#[track_caller]
fn stop_leaving_it_pending(site: &Site, mut daemon: Daemon) -> String {
    wait_for("one mail in the spool", LONG, || {
        spool_files(site).len() == 1
    });
    daemon.wait_log("picomon started: ", 1, LONG);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
    let queued = spool_files(site).remove(0);
    let id = message_id(&queued);
    std::fs::rename(&queued, queued.with_extension("pending")).expect("rename to pending");
    id
}

/// Restarts picomon with the server up, waits for the spool to empty and
/// for `runs` more runs of the check; then the flag goes (if still there)
/// and the OK must arrive. Returns the mails and the log.
#[track_caller]
fn restart_and_recover(site: &Site, room: &mut Mailroom) -> (Vec<crate::smtp::Received>, String) {
    room.up(None);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("db: ", 3, LONG);
    wait_for("the spool to empty", LONG, || spool_files(site).is_empty());
    let runs = daemon.stderr().matches("db: ").count();
    daemon.wait_log("db: ", runs + 3, LONG);
    if site.path("down").exists() {
        site.up();
    }
    wait_for("the OK at the server", LONG, || room.counts().1 >= 1);
    wait_for("the spool to empty", LONG, || spool_files(site).is_empty());
    let mut daemon = daemon;
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
    (room.alerts(), daemon.stderr())
}

/// The Problem spooled before the kill; `saved`: whether its switch was
/// saved before the kill.
#[track_caller]
fn problem_left_pending(saved: bool) {
    let held = HeldPort::new();
    let site = db_site(held.port);
    let mut room = Mailroom::new(held, site.dir.path());
    site.down("FLAG CRITICAL - db down");
    let daemon = site.daemon(&[]);
    daemon.wait_log("db: PROBLEM", 1, LONG);
    let spooled = stop_leaving_it_pending(&site, daemon);
    if !saved {
        // Before the switch the check had nothing to remember.
        for file in STATE_FILES {
            std::fs::remove_file(site.path(file)).expect("remove the state");
        }
    }
    let (alerts, log) = restart_and_recover(&site, &mut room);
    assert_eq!(alerts.len(), 2, "one Problem and one OK:\n{log}");
    let (problem, ok) = (&alerts[0], &alerts[1]);
    assert!(problem.header("subject").contains("Problem"), "{log}");
    assert_eq!(ok.header("in-reply-to"), problem.header("message-id"));
    match saved {
        true => assert_eq!(problem.header("message-id"), spooled, "{log}"),
        false => {
            assert_ne!(problem.header("message-id"), spooled, "{log}");
            assert!(
                log.contains("dropped, picomon stopped before saving"),
                "{log}"
            );
        }
    }
}

/// The OK spooled before the kill (the Problem went out before).
fn recovery_left_pending(saved: bool) {
    let held = HeldPort::new();
    let site = db_site(held.port);
    let mut room = Mailroom::new(held, site.dir.path());
    room.up(None);
    site.down("FLAG CRITICAL - db down");
    let daemon = site.daemon(&[]);
    wait_for("the Problem at the server", LONG, || room.counts().0 == 1);
    wait_for("the spool to empty", LONG, || spool_files(&site).is_empty());
    room.down();
    // The state as it was before the recovery was saved: failing.
    let failing = std::fs::read(site.path("state/state.json")).expect("the saved state");
    site.up();
    daemon.wait_log("db: RECOVERED", 1, LONG);
    let spooled = stop_leaving_it_pending(&site, daemon);
    if !saved {
        for file in STATE_FILES {
            std::fs::write(site.path(file), &failing).expect("restore the state");
        }
    }
    let (alerts, log) = restart_and_recover(&site, &mut room);
    assert_eq!(alerts.len(), 2, "one Problem and one OK:\n{log}");
    let (problem, ok) = (&alerts[0], &alerts[1]);
    assert_eq!(ok.header("in-reply-to"), problem.header("message-id"));
    match saved {
        true => assert_eq!(ok.header("message-id"), spooled, "{log}"),
        false => {
            assert_ne!(ok.header("message-id"), spooled, "{log}");
            assert!(
                log.contains("dropped, picomon stopped before saving"),
                "{log}"
            );
        }
    }
}

#[test]
fn a_kill_before_a_problem_is_saved_mails_it_once_and_its_recovery_threads_under_it() {
    problem_left_pending(false);
}

#[test]
fn a_kill_just_after_a_problem_is_saved_still_mails_it_once() {
    problem_left_pending(true);
}

#[test]
fn a_kill_before_a_recovery_is_saved_mails_one_ok_not_two() {
    recovery_left_pending(false);
}

#[test]
fn a_kill_just_after_a_recovery_is_saved_still_mails_the_ok() {
    recovery_left_pending(true);
}
