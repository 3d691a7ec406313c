//! `picomon status` against a daemon that idle clients crowd, that hangs
//! (SIGSTOP) or that the user may not ask (issue 21): the real daemon
//! answers every real client however many idle ones hold connections,
//! and each failure is told for what it is, exit 3 (Nagios UNKNOWN).
//! Throughout, the daemon goes on checking and mailing.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::campaign::LONG;
use crate::harness::{mail_config, shown, signal, wait_for, Daemon, Site};
use crate::smtp::{Security, SmtpServer};

/// A site whose check `web` fails while the flag file exists, mailing to
/// a real SMTP server on loopback, and its running daemon.
#[track_caller]
fn mailing_site() -> (Site, SmtpServer, Daemon) {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let flag = site.flag_plugin();
    site.write(
        "site.toml",
        &mail_config(
            port,
            &site.path("state"),
            "smtp_retry_timeout = 0.5\n",
            &format!(
                r#"
                    [checks.web]
                    type = "command"
                    command = ["{flag}"]
                "#
            ),
        ),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let daemon = site.daemon(&[]);
    wait_for("picomon status to answer", LONG, || {
        site.run(&["status"]).status.code() == Some(0)
    });
    (site, smtp, daemon)
}

fn socket(site: &Site) -> PathBuf {
    site.path("state/status.sock")
}

/// Waits until `n` mails with `subject` in their subject have arrived.
#[track_caller]
fn wait_mails(smtp: &SmtpServer, subject: &str, n: usize) {
    wait_for(&format!("{n} mails {subject:?}"), LONG, || {
        smtp.messages()
            .iter()
            .filter(|m| m.header("subject").contains(subject))
            .count()
            >= n
    });
}

/// Sends SIGCONT to a stopped daemon when dropped, so that a failing
/// test does not leave it stopped.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

#[test]
fn twenty_idle_clients_and_one_that_never_writes_do_not_make_picomon_status_fail() {
    let (site, smtp, _daemon) = mailing_site();
    site.down("FLAG CRITICAL - down while clients idle");
    wait_mails(&smtp, "Problem: web", 1);

    // Connected, never a byte written: each used to hold the one thread
    // that answers for 2 s, one after the other.
    let mut idle: Vec<UnixStream> = (0..21)
        .map(|_| UnixStream::connect(socket(&site)).expect("connect an idle client"))
        .collect();
    let out = site.run(&["status"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("Failing checks: 1\n"), "{text}");
    assert!(
        stdout.contains("FLAG CRITICAL - down while clients idle"),
        "{text}"
    );

    // The daemon goes on mailing meanwhile.
    site.up();
    wait_mails(&smtp, "OK: web", 1);

    // And the idle clients are cut off unanswered, by a deadline.
    for client in &mut idle {
        client
            .set_read_timeout(Some(LONG))
            .expect("set a read timeout");
        let mut got = Vec::new();
        let read = client.read_to_end(&mut got);
        assert!(matches!(read, Ok(0)), "an idle client got {read:?} {got:?}");
    }
    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
}

#[test]
fn status_of_a_hung_daemon_says_it_timed_out_and_which_picomon_not_os_error_11() {
    let (site, smtp, daemon) = mailing_site();
    daemon.signal(libc::SIGSTOP);
    let resume = Resume(daemon.pid());

    let out = site.run(&["status"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("UNKNOWN: timed out after "), "{text}");
    assert!(
        stdout.contains(&format!(
            "the picomon (pid {}) at {} is not answering",
            daemon.pid(),
            socket(&site).display()
        )),
        "{text}"
    );
    assert!(!stdout.contains("os error"), "{text}");
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["running"], false, "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|r| r.contains("is not answering")),
        "{answer}"
    );

    // Woken up, it answers and mails again.
    drop(resume);
    wait_for("picomon status to answer again", LONG, || {
        site.run(&["status"]).status.code() == Some(0)
    });
    site.down("FLAG CRITICAL - after the hang");
    wait_mails(&smtp, "Problem: web", 1);
}

#[test]
fn status_as_a_user_who_may_not_ask_says_so_and_not_that_no_picomon_runs() {
    let (site, smtp, _daemon) = mailing_site();
    // SAFETY: geteuid only returns a number.
    let root = unsafe { libc::geteuid() } == 0;
    let out = if root {
        // Root may open anything: ask as nobody, with a copy of picomon
        // nobody may run wherever the build is.
        let own = crate::harness::bin("picomon");
        let copy = site.path("picomon");
        std::fs::copy(own, &copy).expect("copy picomon");
        for path in [site.dir.path().to_path_buf(), copy.clone()] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Command::new(&copy)
            .arg("status")
            .arg("-c")
            .arg(site.config())
            .current_dir(site.dir.path())
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run picomon status as nobody")
    } else {
        // Its owner may not connect to a socket of mode 0000 either.
        std::fs::set_permissions(socket(&site), std::fs::Permissions::from_mode(0o000))
            .expect("chmod the socket");
        site.run(&["status"])
    };
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "UNKNOWN: you may not ask the picomon at {}",
            socket(&site).display()
        )),
        "{text}"
    );
    assert!(
        stdout.contains("only picomon's user and root may"),
        "{text}"
    );
    assert!(!stdout.contains("no picomon is running"), "{text}");

    // Nothing of that touched the daemon.
    site.down("FLAG CRITICAL - still watched");
    wait_mails(&smtp, "Problem: web", 1);
}
