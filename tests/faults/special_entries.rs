//! Special files in the mail spool (issue 21): an entry that is a FIFO
//! blocked the start, and SIGTERM was then ignored; one that is a link to
//! /dev/zero grew picomon by gigabytes in seconds; one valid 30 MB mail
//! held the others back for a minute of CPU. Each is now set aside and
//! named in the log, the other mails go out, and SIGTERM stops picomon.

use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::campaign::LONG;
use crate::harness::{wait_for, Site};
use crate::smtp::{Security, SmtpServer};

/// Mails queued before the start, beside the bad entry.
const GOOD: usize = 5;
/// What picomon may map at most: far above its needs, far below what
/// reading /dev/zero whole takes, so that a regression fails this test
/// instead of exhausting the machine's memory.
const ADDRESS_SPACE: u64 = 4 << 30;

/// A spooled mail as picomon writes it, `body` its text.
fn mail(n: usize, body: &str) -> String {
    let time = r#"{"secs_since_epoch":1700000000,"nanos_since_epoch":0}"#;
    format!(
        r#"{{"message_id":"<queued-{n}@monitor.example.org>","from":"Picomon <picomon@monitor.example.org>","to":["ops@example.org"],"subject":"queued {n}","body":{body:?},"event_time":{time},"queued_at":{time}}}"#
    )
}

/// The name of the `n`-th entry of the spool, in queueing order.
fn entry(n: usize) -> String {
    format!(
        "{:024}-{:06}.json",
        1_700_000_000_000_000_000u128 + n as u128,
        0
    )
}

/// Queues `GOOD` mails around a bad entry made by `bad` (at the name it
/// is given), starts picomon, and checks that the good ones are sent,
/// that SIGTERM stops it, and that the bad one is set aside and named
/// with `why`, what it is.
fn the_other_mails_go_out_around(why: &str, bad: impl FnOnce(&Path)) {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 0.2
state_dir = "{state}"

[emails]
from = "Picomon <picomon@monitor.example.org>"
to = ["ops@example.org"]
smtp_host = "127.0.0.1:{port}"

[checks.fine]
type = "command"
command = ["true"]
"#,
            state = site.path("state").display()
        ),
    );
    let outbox = site.path("state/outbox");
    for n in 0..=GOOD {
        if n == GOOD / 2 {
            continue;
        }
        site.write(&format!("state/outbox/{}", entry(n)), &mail(n, "hello\n"));
    }
    let name = entry(GOOD / 2);
    bad(&outbox.join(&name));
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);

    let mut cmd = site.picomon();
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut daemon = site.spawn_daemon(cmd, &[]);
    let msgs = smtp.wait_messages(GOOD, LONG);
    let mut subjects: Vec<&str> = msgs.iter().map(|m| m.header("subject")).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["queued 0", "queued 1", "queued 3", "queued 4", "queued 5"]
    );
    wait_for("the bad entry named in the log", LONG, || {
        daemon.stderr().contains(&name)
    });
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(LONG);
    let log = daemon.stderr();
    assert_eq!(status.code(), Some(0), "{log}");
    let aside = outbox.join("rejected").join(&name);
    assert!(
        std::fs::symlink_metadata(&aside).is_ok(),
        "the bad entry is not set aside as {}:\n{log}",
        aside.display()
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&name) && l.contains(why) && l.contains("rejected")),
        "no line names the bad entry, says it is {why:?} and where it went:\n{log}"
    );
}

#[test]
fn a_fifo_in_the_mail_spool_neither_blocks_the_start_nor_the_stop() {
    the_other_mails_go_out_around("a FIFO", |path| {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("run mkfifo");
        assert!(made.success(), "mkfifo failed");
    });
}

#[test]
fn a_spooled_mail_linked_to_dev_zero_is_set_aside_without_reading_it() {
    // Not read at all: read until the address space ran out, it would be
    // set aside too, as unreadable for want of memory.
    the_other_mails_go_out_around("a symbolic link", |path| {
        std::os::unix::fs::symlink("/dev/zero", path).expect("symlink");
    });
}

#[test]
fn a_30_mb_spooled_mail_is_set_aside_and_holds_back_no_other() {
    the_other_mails_go_out_around("larger than", |path| {
        let body = "x".repeat(30 * 1024 * 1024);
        std::fs::write(path, mail(99, &body)).expect("write");
    });
}
