//! Push checks: `picomon push` over the status socket, `-- COMMAND`, the
//! HTTP listener spoken to by curl and by raw hostile requests, a missed
//! push mailed exactly once (and its recovery) through a real SMTP
//! server, the last push kept across a restart, and configuration errors
//! that name their key.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{closed_port, wait_for, Site};
use crate::smtp::{Security, SmtpServer};

const LONG: Duration = Duration::from_secs(30);
const TOKEN: &str = "s3cret-push-token";

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A site with one push check `backup` (period 1 s, grace 0.5 s) mailing a
/// real SMTP server, state in `state/`, pushes over HTTP on `listen`.
fn push_site(period: f64, listen: Option<u16>) -> (Site, SmtpServer) {
    let site = Site::new("");
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write("token", &format!("{TOKEN}\n"));
    std::fs::set_permissions(site.path("token"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod token");
    let listen = listen
        .map(|p| format!("[push]\nlisten = \"127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    site.write(
        "site.toml",
        &format!(
            "base_tick = 0.2\nstate_dir = \"{}\"\n[emails]\nto = [\"ops@example.org\"]\nfrom = \"Picomon <picomon@monitor.example.org>\"\nsmtp_host = \"127.0.0.1:{port}\"\nsmtp_retry_timeout = 0.5\n{listen}[checks.backup]\ntype = \"push\"\nperiod = {period}\ngrace = 0.5\ntoken_file = \"{}\"\n",
            site.path("state").display(),
            site.path("token").display(),
        ),
    );
    (site, smtp)
}

/// `picomon push backup -c site.toml -- COMMAND…`, to completion.
fn push_run(site: &Site, command: &[&str]) -> Output {
    let mut cmd = site.picomon();
    cmd.args(["push", "backup", "-c"])
        .arg(site.config())
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    cmd.output().expect("run picomon push")
}

#[track_caller]
fn push(site: &Site, args: &[&str]) -> String {
    let mut all = vec!["push", "backup"];
    all.extend_from_slice(args);
    let out = site.run(&all);
    assert!(out.status.success(), "picomon {all:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The check's last output in `picomon status --json`.
fn status_output(site: &Site) -> String {
    let out = site.run(&["status", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    view["instances"][0]["output"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_missed_push_is_mailed_once_and_the_next_push_recovers_it() {
    let (site, smtp) = push_site(1.0, None);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("picomon started", 1, LONG);
    let said = push(&site, &["--exit", "0", "--output", "BACKUP OK - 3 GiB"]);
    assert_eq!(said, "backup: OK recorded: BACKUP OK - 3 GiB\n");
    assert_eq!(status_output(&site), "BACKUP OK - 3 GiB");

    // No push for period + grace: one Problem mail, however long it lasts.
    let mails = smtp.wait_messages(1, LONG);
    assert_eq!(mails[0].header("subject"), "[picomon] Problem: backup");
    assert!(
        (mails[0].body.contains("no push for 1s (last at 20")
            || mails[0].body.contains("no push for 2s (last at 20")),
        "{}",
        mails[0].body
    );
    let evaluations = daemon.stderr().matches("backup: CRITICAL").count();
    daemon.wait_log("backup: CRITICAL", evaluations + 5, LONG);
    assert_eq!(smtp.messages().len(), 1, "one mail for the outage");

    // A push ends it: one OK mail, in the Problem's thread.
    push(&site, &["--output", "BACKUP OK - late"]);
    let mails = smtp.wait_messages(2, LONG);
    assert_eq!(mails[1].header("subject"), "[picomon] OK: backup");
    assert_eq!(
        mails[1].header("in-reply-to"),
        mails[0].header("message-id")
    );

    // A pushed failure is a failure of the check (retry 0 for push checks).
    push(
        &site,
        &["--exit", "2", "--output", "BACKUP CRITICAL - disk full"],
    );
    let mails = smtp.wait_messages(3, LONG);
    assert_eq!(mails[2].header("subject"), "[picomon] Problem: backup");
    assert!(
        mails[2].body.contains("BACKUP CRITICAL - disk full"),
        "{}",
        mails[2].body
    );
}

#[test]
fn push_wraps_a_command_exits_with_its_status_and_a_run_hanging_past_period_is_missed() {
    let (site, smtp) = push_site(1.0, None);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("picomon started", 1, LONG);
    let out = push_run(
        &site,
        &[
            "sh",
            "-c",
            "echo copying; echo 'BACKUP WARNING - 2 files skipped'; exit 1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "copying\nBACKUP WARNING - 2 files skipped\n",
        "the command's output passes through"
    );
    daemon.wait_log("backup: push: a run started", 1, LONG);
    daemon.wait_log("backup: push: WARNING recorded: copying", 1, LONG);
    let out = push_run(&site, &["sh", "-c", "exit 0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A run that hangs: its start holds the deadline off one period, then
    // it is missed, and the mail says the run has not ended.
    let mut hung = site.picomon();
    hung.args(["push", "backup", "-c"])
        .arg(site.config())
        .args(["--", "sleep", "60"])
        .stdout(Stdio::null());
    let mut hung = hung.spawn().expect("start picomon push -- sleep");
    // Mails: the WARNING's Problem, its OK, then the hung run's Problem.
    let mails = smtp.wait_messages(3, LONG);
    let _ = hung.kill();
    let _ = hung.wait();
    assert_eq!(mails[1].header("subject"), "[picomon] OK: backup");
    assert!(mails[2].body.contains("has not ended"), "{}", mails[2].body);
    assert_eq!(smtp.messages().len(), 3);
}

#[test]
fn the_last_push_survives_a_restart() {
    let (site, smtp) = push_site(3.0, None);
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("picomon started", 1, LONG);
    push(&site, &["--output", "BACKUP OK"]);
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(LONG).success());
    let saved = std::fs::read_to_string(site.path("state/state.json")).expect("state.json");
    assert!(saved.contains("\"last\""), "{saved}");
    drop(daemon);

    let daemon = site.daemon(&["-D"]);
    let mails = smtp.wait_messages(1, LONG);
    // Missed since the push before the restart, not since the new start.
    assert!(mails[0].body.contains("(last at 20"), "{}", mails[0].body);
    assert!(
        !mails[0].body.contains("began watching"),
        "{}",
        mails[0].body
    );
    drop(daemon);
}

/// Sends `request` raw and returns what the listener answered (until it
/// closed the connection).
fn raw(port: u16, request: &[u8]) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(LONG)).expect("timeout");
    let _ = conn.write_all(request);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn curl(port: u16, path: &str, token: Option<&str>, body: &str) -> (String, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--data-binary",
        body,
    ])
    .arg(format!("http://127.0.0.1:{port}{path}"));
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = cmd.output().expect("run curl");
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = all.rsplit_once('\n').unwrap_or((&all, ""));
    (code.to_string(), body.to_string())
}

#[test]
fn pushes_over_http_need_the_token_and_hostile_requests_are_bounded() {
    let port = closed_port();
    let (site, _smtp) = push_site(3600.0, Some(port));
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("taking pushes over HTTP", 1, LONG);

    let (code, said) = curl(
        port,
        "/push/backup?exit=1",
        Some(TOKEN),
        "BACKUP WARNING - slow",
    );
    assert_eq!(code, "200", "{said}");
    assert_eq!(said, "WARNING recorded: BACKUP WARNING - slow\n");
    assert_eq!(status_output(&site), "BACKUP WARNING - slow");

    // Refused pushes record nothing.
    let (code, _) = curl(port, "/push/backup", Some("wrong"), "BACKUP OK - forged");
    assert_eq!(code, "403");
    let (code, _) = curl(port, "/push/backup", None, "BACKUP OK - anonymous");
    assert_eq!(code, "401");
    let (code, _) = curl(port, "/push/nightly", Some(TOKEN), "x");
    assert_eq!(code, "404");
    assert_eq!(status_output(&site), "BACKUP WARNING - slow");

    // Too many headers, a head too long, a body too large, not a POST.
    let mut many = String::from("POST /push/backup HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-H{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert!(raw(port, many.as_bytes()).starts_with("HTTP/1.1 431 "));
    let long = format!(
        "POST /push/backup HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert!(raw(port, long.as_bytes()).starts_with("HTTP/1.1 431 "));
    let big = format!(
        "POST /push/backup HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 10000000\r\n\r\n"
    );
    assert!(raw(port, big.as_bytes()).starts_with("HTTP/1.1 413 "));
    assert!(raw(port, b"GET /push/backup HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    assert!(raw(port, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));

    // A client that says nothing is cut off by the connection's deadline.
    let started = Instant::now();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(Some(LONG)).expect("timeout");
    let mut buf = [0u8; 16];
    assert_eq!(
        idle.read(&mut buf).unwrap_or(0),
        0,
        "an idle client is closed"
    );
    assert!(started.elapsed() < LONG);

    // And the listener still takes a real push after all that.
    let (code, said) = curl(port, "/push/backup", Some(TOKEN), "BACKUP OK - after");
    assert_eq!(code, "200", "{said}");
    wait_for("the push to show", LONG, || {
        status_output(&site) == "BACKUP OK - after"
    });
}

#[test]
fn push_configuration_errors_name_their_key_and_exit_78() {
    let site = Site::new("[checks.backup]\ntype = \"push\"\n");
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(
        text(&out).contains("checks.backup.period"),
        "{}",
        text(&out)
    );

    site.write(
        "site.toml",
        "[push]\nlisten = \"everywhere\"\n[heartbeat]\nevery = 60\n[checks.backup]\ntype = \"push\"\nperiod = 60\nhosts = [\"a\"]\ntoken_file = \"/nonexistent/token\"\n",
    );
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    for key in [
        "push.listen",
        "heartbeat",
        "checks.backup.hosts",
        "checks.backup.token_file",
    ] {
        assert!(text(&out).contains(key), "{key}: {}", text(&out));
    }

    site.write(
        "site.toml",
        "[push]\nlisten = \"127.0.0.1:8789\"\n[heartbeat]\nurl = \"https://hc.example.org/ping/5b1c\"\n[checks.backup]\ntype = \"push\"\nperiod = 86400\n",
    );
    let out = site.run(&["check-config"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(
            "1 push (HTTP on 127.0.0.1:8789), heartbeat every 1m 00s (GET hc.example.org)"
        ),
        "{said}"
    );
}

#[test]
fn a_missed_push_goes_through_retry_and_the_notifiers_as_any_failure() {
    let (site, smtp) = push_site(1.0, None);
    let told = site.path("told");
    let config = std::fs::read_to_string(site.config()).expect("config");
    site.write(
        "site.toml",
        &format!(
            "{config}retry = 2\n[notify.log]\ntype = \"command\"\ncommand = [\"sh\", \"-c\", \"echo $NOTIFY_STATE $NOTIFY_CHECK >> {}\"]\n",
            told.display()
        ),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("picomon started", 1, LONG);
    push(&site, &["--output", "BACKUP OK"]);
    let mails = smtp.wait_messages(1, LONG);
    // retry = 2: the third missed evaluation is the Problem.
    let log = daemon.stderr();
    let problem = log.find("backup: PROBLEM").expect("a PROBLEM line");
    assert_eq!(
        log[..problem].matches("backup: CRITICAL in").count(),
        3,
        "{log}"
    );
    assert!(mails[0].body.contains("no push for"), "{}", mails[0].body);
    wait_for("the notifier told", LONG, || {
        std::fs::read_to_string(&told).unwrap_or_default() == "Problem backup\n"
    });
}
