//! An OK lost to kill -9 (issue 21): two checks switch in one tick and
//! picomon is killed while it tells them, between the spooling of the
//! second mail and the save that says it was told. Every rename picomon
//! makes is slowed to a second (strace's fault injection), so that the
//! kill lands there every time: the second mail's `.pending` file is on
//! disk and the save after it has not finished. Whatever a restart then
//! delivers must come with its OK once the checks recover.

use std::process::Command;
use std::time::Duration;

use crate::harness::{alive, signal, wait_for, Site};
use crate::smtp::{Received, Security, SmtpServer};

const LONG: Duration = Duration::from_secs(90);

/// Two checks, `alpha` and `beta`, each failing while its flag exists.
fn site(port: u16) -> Site {
    let site = Site::new("");
    let plugin = site.plugin(
        "flag",
        &format!(
            "if [ -e {0}/down-$1 ]; then echo \"FLAG CRITICAL - $1 down\"; exit 2; fi\necho \"FLAG OK - $1 fine\"",
            site.dir.path().display()
        ),
    );
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 0.5
default_retry = 0
state_dir = "{state}"

[emails]
digest_over = 0
from = "Picomon <picomon@monitor.example.org>"
to = ["ops@example.org"]
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[checks.alpha]
type = "command"
command = ["{plugin}", "alpha"]

[checks.beta]
type = "command"
command = ["{plugin}", "beta"]
"#,
            state = site.path("state").display()
        ),
    );
    site
}

/// The spool's pending entries that tell about `check`.
fn pending_about(site: &Site, check: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(site.path("state/outbox")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pending"))
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .is_ok_and(|text| text.contains(&format!("Problem: {check}\"")))
        })
        .count()
}

/// The process strace runs (its only child).
#[track_caller]
fn traced_child(strace: u32) -> u32 {
    let mut child = None;
    wait_for("picomon under strace", LONG, || {
        child = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok());
        child.is_some()
    });
    child.unwrap_or_default()
}

/// (Problems, OKs) the server got about `check`.
fn told(mails: &[Received], check: &str) -> (usize, usize) {
    let count = |state: &str| {
        mails
            .iter()
            .filter(|m| m.header("subject") == format!("[picomon] {state}: {check}"))
            .count()
    };
    (count("Problem"), count("OK"))
}

#[test]
fn an_ok_is_not_lost_when_picomon_is_killed_between_the_two_mails_of_one_tick() {
    let port = SmtpServer::free_port();
    let site = site(port);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write("down-alpha", "");
    site.write("down-beta", "");

    // Both fail in tick 0; every rename takes a second.
    let mut strace = Command::new("strace");
    strace.args([
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=rename,renameat,renameat2",
        "-e",
        "inject=rename,renameat,renameat2:delay_enter=1000000",
    ]);
    strace.arg(crate::harness::bin("picomon"));
    strace.current_dir(site.dir.path());
    let traced = site.spawn_daemon(strace, &[]);
    let picomon = traced_child(traced.pid());
    wait_for("beta's Problem spooled pending", LONG, || {
        pending_about(&site, "beta") > 0
    });
    signal(picomon, libc::SIGKILL);
    // kill() returns before the process is gone, and until it is its lock
    // on state_dir is held: a picomon started at once (on a busy machine)
    // found it "in use by another picomon". A zombie has closed its files.
    wait_for("the killed picomon gone", LONG, || !alive(picomon));
    drop(traced);

    // Beta recovers while picomon is down; alpha is still failing.
    std::fs::remove_file(site.path("down-beta")).expect("rm");
    let mut daemon = site.daemon(&[]);
    wait_for("alpha's Problem at the server", LONG, || {
        told(&smtp.messages(), "alpha").0 > 0
    });
    std::fs::remove_file(site.path("down-alpha")).expect("rm");
    wait_for("alpha's OK at the server", LONG, || {
        told(&smtp.messages(), "alpha").1 > 0
    });
    daemon.signal(libc::SIGTERM);
    assert_eq!(
        daemon.wait_exit(LONG).code(),
        Some(0),
        "{}",
        daemon.stderr()
    );

    let mails = smtp.messages();
    for check in ["alpha", "beta"] {
        let (problems, oks) = told(&mails, check);
        assert_eq!(
            problems,
            oks,
            "{check}: every Problem delivered has its OK: {:#?}\n{}",
            mails
                .iter()
                .map(|m| m.header("subject"))
                .collect::<Vec<_>>(),
            daemon.stderr()
        );
        assert!(problems <= 1, "{check}: told once: {problems} Problems");
    }
}
