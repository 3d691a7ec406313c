//! A damaged `state.json` (issue 21): an outage is open, its Problem
//! mailed; picomon stops, `state.json` is damaged, picomon starts again
//! while the check still fails, then the check recovers. The damage must
//! cost no alert: no second Problem at the restart, and exactly one OK,
//! in the Problem's thread. It used to start afresh: a second Problem,
//! and the first one's OK lost.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::campaign::LONG;
use crate::harness::{mail_config, wait_for, Daemon, Site};
use crate::smtp::{Security, SmtpServer};

/// A site with one check, failing while `down` exists and counting its
/// runs in `runs`, state in `state/`, mail to 127.0.0.1:`port` (also the
/// site of the wall clock's step).
pub fn site(port: u16) -> Site {
    let site = Site::new("");
    let plugin = site.plugin(
        "flag",
        &format!(
            "echo run >> {runs}\nif [ -e {down} ]; then cat {down}; exit 2; fi\necho 'FLAG OK - fine'",
            runs = site.path("runs").display(),
            down = site.path("down").display()
        ),
    );
    site.write(
        "site.toml",
        &mail_config(
            port,
            &site.path("state"),
            r#"
                from = "Picomon <picomon@monitor.example.org>"
            "#,
            &format!(
                r#"
                    [checks.web]
                    type = "command"
                    command = ["{plugin}"]
                "#
            ),
        ),
    );
    site
}

/// How many times the check has run.
pub fn runs(site: &Site) -> usize {
    std::fs::read_to_string(site.path("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Stops the daemon with SIGTERM and waits for a clean exit.
#[track_caller]
pub fn stop(mut daemon: Daemon) -> String {
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
    daemon.stderr()
}

/// Opens an outage, damages `state.json` with `damage` while picomon is
/// stopped, and checks that the restart and the recovery mail exactly
/// what they would have without the damage.
fn an_open_outage_survives(damage: impl FnOnce(&Path)) {
    let port = SmtpServer::free_port();
    let site = site(port);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - down");
    let daemon = site.daemon(&[]);
    smtp.wait_messages(1, LONG);
    stop(daemon);
    let state = site.path("state/state.json");
    assert!(state.is_file(), "picomon saved no state");
    damage(&state);

    // Still failing after the restart: nothing new to tell.
    let daemon = site.daemon(&[]);
    let before = runs(&site);
    wait_for("three runs after the restart", LONG, || {
        runs(&site) >= before + 3
    });
    site.up();
    wait_for("the OK at the server", LONG, || {
        smtp.messages()
            .iter()
            .any(|m| m.header("subject").starts_with("[picomon] OK: "))
    });
    let log = stop(daemon);

    let msgs = smtp.messages();
    let subjects: Vec<&str> = msgs.iter().map(|m| m.header("subject")).collect();
    assert!(
        subjects.len() == 2
            && subjects[0].starts_with("[picomon] Problem: ")
            && subjects[1].starts_with("[picomon] OK: "),
        "not one Problem then its OK: {subjects:?}\n{log}"
    );
    assert_eq!(
        msgs[1].header("in-reply-to"),
        msgs[0].header("message-id"),
        "the OK is not in the Problem's thread"
    );
    assert!(
        log.contains("state.json: damaged saved state") && log.contains("state.json.backup"),
        "the log names neither the damaged file nor the one used:\n{log}"
    );
}

#[test]
fn an_open_outage_keeps_its_ok_when_state_json_is_truncated_to_half() {
    an_open_outage_survives(|state| {
        let len = std::fs::metadata(state).expect("stat").len();
        std::fs::File::options()
            .write(true)
            .open(state)
            .and_then(|f| f.set_len(len / 2))
            .expect("truncate");
    });
}

#[test]
fn an_open_outage_keeps_its_ok_when_state_json_is_overwritten_with_garbage() {
    an_open_outage_survives(|state| {
        let garbage: Vec<u8> = (0u8..=255).cycle().skip(7).take(300).collect();
        std::fs::write(state, garbage).expect("write");
    });
}

#[test]
fn an_open_outage_keeps_its_ok_when_state_json_is_emptied() {
    an_open_outage_survives(|state| std::fs::write(state, b"").expect("write"));
}

#[test]
fn an_open_outage_keeps_its_ok_when_state_json_becomes_a_directory() {
    an_open_outage_survives(|state| {
        std::fs::remove_file(state).expect("rm");
        std::fs::create_dir(state).expect("mkdir");
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    });
}

#[test]
fn an_open_outage_keeps_its_ok_when_state_json_becomes_a_link_to_another_file() {
    an_open_outage_survives(|state| {
        // Another file picomon could read as a state: one with no outage.
        let other = state.with_file_name("other.json");
        std::fs::write(&other, br#"{"version":2,"instances":{}}"#).expect("write");
        std::fs::remove_file(state).expect("rm");
        std::os::unix::fs::symlink(&other, state).expect("symlink");
    });
}
