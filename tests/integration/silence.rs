//! `picomon silence`: a silence added from the command line reaches a
//! running daemon and keeps its mail back; its end (expiry or removal)
//! sends the one mail due, threaded; silences are kept in `state_dir` and
//! survive a restart; bad input is refused by name.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::harness::{dedent, mail_config, shown as text, Daemon, Site};
use crate::smtp::{Security, SmtpServer};

const LONG: Duration = Duration::from_secs(30);
const ID: &str = "homepage/web/ipv4";

/// A site with one check that fails while `down` exists, mail to a real
/// SMTP server, state in `state/`.
fn mail_site() -> (Site, SmtpServer) {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write(
        "site.toml",
        &mail_config(
            port,
            &site.path("state"),
            r#"
                from = "Picomon <picomon@monitor.example.org>"
                smtp_retry_timeout = 0.5
            "#,
            &format!(
                r#"
                    [hosts.web]
                    name = "front web"
                    ipv4 = "127.0.0.1"
                    [checks.homepage]
                    type = "command"
                    hosts = ["web"]
                    command = ["{flag}", "{{addr}}"]
                "#
            ),
        ),
    );
    (site, smtp)
}

#[track_caller]
fn silence(site: &Site, args: &[&str]) -> String {
    let mut all = vec!["silence"];
    all.extend_from_slice(args);
    let out = site.run(&all);
    assert!(out.status.success(), "picomon {all:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for `runs` more runs of the check, so that a mail that should
/// not come has had its chance.
#[track_caller]
fn more_runs(daemon: &Daemon, runs: usize) {
    let done = daemon.stderr().matches(&format!("{ID}: ")).count();
    daemon.wait_log(&format!("{ID}: "), done + runs, LONG);
}

#[test]
fn a_silence_added_to_a_running_daemon_stops_the_problem_mail_and_its_expiry_sends_the_one_due() {
    let (site, smtp) = mail_site();
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log(&format!("{ID}: OK in"), 2, LONG);
    let added = silence(
        &site,
        &[
            "add",
            "homepage/*",
            "--for",
            "15s",
            "--reason",
            "kernel upgrade",
        ],
    );
    assert!(
        added.starts_with("silence 1: homepage/* until 20"),
        "{added}"
    );
    assert!(
        added.contains("silences 1 instance: homepage/web/ipv4"),
        "{added}"
    );
    site.down("FLAG CRITICAL - rebooting");
    daemon.wait_log(&format!("{ID}: silenced until"), 1, LONG);
    // The switch is logged too (after the silence's line, so waited for).
    daemon.wait_log(&format!("{ID}: PROBLEM"), 1, LONG);
    more_runs(&daemon, 5);
    assert_eq!(smtp.messages().len(), 0, "a silenced Problem was mailed");

    // The silence expires while the check still fails: one Problem mail.
    let mails = smtp.wait_messages(1, LONG);
    assert_eq!(
        mails[0].header("subject"),
        "[picomon] Problem: homepage on front web"
    );
    assert!(
        mails[0].body.contains("FLAG CRITICAL - rebooting"),
        "{}",
        mails[0].body
    );
    // It says why it comes only now.
    assert!(
        mails[0].body.starts_with("This mail is late: a silence"),
        "{}",
        mails[0].body
    );
    more_runs(&daemon, 10);
    assert_eq!(smtp.messages().len(), 1, "one mail for the outage");

    // And its recovery replies to it.
    site.up();
    let mails = smtp.wait_messages(2, LONG);
    assert_eq!(
        mails[1].header("subject"),
        "[picomon] OK: homepage on front web"
    );
    assert_eq!(
        mails[1].header("in-reply-to"),
        mails[0].header("message-id")
    );
    more_runs(&daemon, 3);
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn a_recovery_during_a_silence_is_mailed_in_the_problem_thread_when_the_silence_is_removed() {
    let (site, smtp) = mail_site();
    site.down("FLAG CRITICAL - down before the silence");
    let daemon = site.daemon(&["-D"]);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    silence(&site, &["add", "*", "--for", "2h", "--reason", "fixing it"]);
    site.up();
    daemon.wait_log(&format!("{ID}: silenced until"), 1, LONG);
    daemon.wait_log(&format!("{ID}: RECOVERED"), 1, LONG);
    more_runs(&daemon, 10);
    assert_eq!(smtp.messages().len(), 1, "a silenced OK was mailed");

    let listed = silence(&site, &["list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("ID   PATTERN"), "{listed}");
    assert!(lines[1].starts_with("1    *  "), "{listed}");
    assert!(lines[1].ends_with("fixing it"), "{listed}");

    assert_eq!(silence(&site, &["remove", "1"]), "silence 1 removed: *\n");
    let mails = smtp.wait_messages(2, LONG);
    assert_eq!(
        mails[1].header("subject"),
        "[picomon] OK: homepage on front web"
    );
    assert_eq!(mails[1].header("in-reply-to"), problem.header("message-id"));
    assert!(
        mails[1].body.starts_with("This mail is late: a silence"),
        "{}",
        mails[1].body
    );
    more_runs(&daemon, 10);
    assert_eq!(smtp.messages().len(), 2, "one OK mail, once");
    assert_eq!(silence(&site, &["list"]), "no silences\n");
}

#[test]
fn a_silence_survives_a_restart_and_is_kept_private_in_state_dir() {
    let (site, smtp) = mail_site();
    silence(
        &site,
        &[
            "add",
            "homepage/web/*",
            "--for",
            "1h",
            "--reason",
            "planned",
        ],
    );
    let mode = std::fs::metadata(site.path("state/silences.json"))
        .expect("silences.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "silences.json mode {mode:o}");
    site.down("FLAG CRITICAL - planned outage");
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log(&format!("{ID}: silenced until"), 1, LONG);
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(LONG).success());

    // Restarted while still failing and silenced: nothing mailed; the
    // Problem goes out once the silence is removed.
    let daemon = site.daemon(&["-D"]);
    more_runs(&daemon, 10);
    assert_eq!(smtp.messages().len(), 0);
    silence(&site, &["remove", "1"]);
    let mails = smtp.wait_messages(1, LONG);
    assert_eq!(
        mails[0].header("subject"),
        "[picomon] Problem: homepage on front web"
    );
    more_runs(&daemon, 10);
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn bad_silences_are_refused_by_name() {
    let (site, _smtp) = mail_site();
    let run = |args: &[&str]| {
        let mut all = vec!["silence"];
        all.extend_from_slice(args);
        site.run(&all)
    };
    let too_long = run(&["add", "*", "--for", "8days", "--reason", "x"]);
    assert_eq!(too_long.status.code(), Some(2), "{}", text(&too_long));
    assert!(text(&too_long).contains("7 days"), "{}", text(&too_long));
    let endless = run(&["add", "*", "--reason", "x"]);
    assert_eq!(endless.status.code(), Some(2), "{}", text(&endless));
    assert!(text(&endless).contains("--for"), "{}", text(&endless));
    let no_reason = run(&["add", "*", "--for", "1h", "--reason", " "]);
    assert_eq!(no_reason.status.code(), Some(2), "{}", text(&no_reason));
    let unknown = run(&["remove", "42"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("ID 42: no such silence"),
        "{}",
        text(&unknown)
    );
    let nothing = run(&["add", "nosuch/*", "--for", "1h", "--reason", "typo"]);
    assert!(nothing.status.success(), "{}", text(&nothing));
    assert!(
        text(&nothing).contains("matches no instance"),
        "{}",
        text(&nothing)
    );

    let stateless = Site::new(&dedent(
        r#"
            base_tick = 1
            [checks.x]
            type = "command"
            command = ["true"]
        "#,
    ));
    let out = stateless.run(&["silence", "list"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("state_dir: not set"), "{}", text(&out));
}
