//! `renotify_every` and `picomon ack`: a failing check is reminded in its
//! thread every period; an ack (over the status socket) stops that until
//! it recovers, the recovery is still mailed, and the next outage is
//! reminded again; a kill -9 keeps the reminders' count and the ack.

use std::process::Output;
use std::time::Duration;

use crate::harness::{Daemon, Site};
use crate::smtp::{Security, SmtpServer};

const LONG: Duration = Duration::from_secs(30);
const ID: &str = "homepage/web/ipv4";
const PROBLEM: &str = "[picomon] Problem: homepage on front web";
const STILL: &str = "[picomon] Still failing: homepage on front web";

fn site() -> (Site, SmtpServer) {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write(
        "site.toml",
        &format!(
            r#"base_tick = 0.2
default_retry = 0
state_dir = "{state}"
renotify_every = 3600

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[hosts.web]
name = "front web"
ipv4 = "127.0.0.1"

[checks.homepage]
type = "command"
hosts = ["web"]
command = ["{flag}", "{{addr}}"]
renotify_every = 1.5
"#,
            state = site.path("state").display()
        ),
    );
    (site, smtp)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits for `runs` more runs of the check.
fn more_runs(daemon: &Daemon, runs: usize) {
    let done = daemon.stderr().matches(&format!("{ID}: ")).count();
    daemon.wait_log(&format!("{ID}: "), done + runs, LONG);
}

#[test]
fn a_failing_check_is_reminded_in_its_thread_until_acked_and_the_ack_ends_with_its_outage() {
    let (site, smtp) = site();
    site.down("FLAG CRITICAL - disk full");
    let mut daemon = site.daemon(&["-D"]);
    let mails = smtp.wait_messages(2, LONG);
    assert_eq!(mails[0].header("subject"), PROBLEM);
    assert_eq!(mails[1].header("subject"), STILL);
    assert_eq!(
        mails[1].header("in-reply-to"),
        mails[0].header("message-id")
    );
    assert!(
        mails[1]
            .body
            .starts_with("homepage on front web is still failing after "),
        "{}",
        mails[1].body
    );
    assert!(
        mails[1].body.contains(" failed runs: CRITICAL."),
        "{}",
        mails[1].body
    );
    assert!(mails[1].body.contains("Reminder: 1 "), "{}", mails[1].body);
    assert!(
        mails[1].body.contains("FLAG CRITICAL - disk full"),
        "{}",
        mails[1].body
    );

    // A kill -9 keeps the count: the next reminder is the second.
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(LONG);
    let mut daemon = site.daemon(&["-D"]);
    let mails = smtp.wait_messages(3, LONG);
    assert_eq!(mails[2].header("subject"), STILL);
    assert!(mails[2].body.contains("Reminder: 2 "), "{}", mails[2].body);
    assert_eq!(
        mails[2].header("in-reply-to"),
        mails[0].header("message-id")
    );

    // Acknowledged: no more reminders, across another kill -9.
    let out = site.run(&["ack", "homepage/*", "--reason", "replacing the disk"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.starts_with(&format!("{ID}: acknowledged by "))
            && said.contains(": replacing the disk"),
        "{said}"
    );
    let acked = smtp.messages().len();
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(LONG);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("picomon started", 1, LONG);
    let status = site.run(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(shown.contains("[acknowledged by "), "{shown}");
    assert!(shown.contains(": replacing the disk]"), "{shown}");
    // Over four periods of runs (0.2 s a tick, 1.5 s a period).
    more_runs(&daemon, 30);
    assert_eq!(smtp.messages().len(), acked, "a reminder after the ack");

    // The recovery is still mailed; the ack goes with the outage.
    site.up();
    let mails = smtp.wait_messages(acked + 1, LONG);
    assert_eq!(
        mails[acked].header("subject"),
        "[picomon] OK: homepage on front web"
    );
    let status = site.run(&["status"]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("acknowledged"),
        "{}",
        text(&status)
    );
    // Nothing to acknowledge now: exit 1, said so.
    let out = site.run(&["ack", ID, "--reason", "late"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("not failing, nothing to acknowledge: homepage/web/ipv4"),
        "{}",
        text(&out)
    );
    let out = site.run(&["ack", "nosuch/*", "--reason", "typo"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("matches no instance"),
        "{}",
        text(&out)
    );

    // The next outage is reminded again.
    site.down("FLAG CRITICAL - disk full again");
    let mails = smtp.wait_messages(acked + 3, LONG);
    assert_eq!(mails[acked + 1].header("subject"), PROBLEM);
    assert_eq!(mails[acked + 2].header("subject"), STILL);
    assert!(
        mails[acked + 2].body.contains("Reminder: 1 "),
        "{}",
        mails[acked + 2].body
    );
}

#[test]
fn a_renotify_every_that_is_not_a_duration_is_refused_by_name() {
    let site = Site::new("renotify_every = -5\n");
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("renotify_every"),
        "{}",
        text(&out)
    );
}
