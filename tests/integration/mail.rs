//! Alert emails through a real SMTP server: threading, recipients, queueing
//! while the server is down, the on-disk outbox across restarts, STARTTLS,
//! refusals, reports and header injection.

use std::time::Duration;

use crate::harness::{backlog_config, dedent, Daemon, Site};
use crate::smtp::{private_ca, Security, SmtpServer};

const LONG: Duration = Duration::from_secs(30);

/// A site with one check that fails while the file `down` exists.
fn flag_site(emails: &str, extra: &str) -> Site {
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                default_retry = 1
                {extra}
                [emails]
                from = "Picomon <picomon@monitor.example.org>"
                smtp_retry_timeout = 0.5
                {emails}
                [hosts.web]
                name = "front web"
                ipv4 = "127.0.0.1"
                [checks.homepage]
                type = "command"
                hosts = ["web"]
                command = ["{plugin}", "{{addr}}"]
            "#
        )),
    );
    site
}

/// `flag_site` mailing `to` through 127.0.0.1:`port`, with a state
/// directory (so a spool) of its own.
fn spooled_flag_site(port: u16, to: &str) -> (Site, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("state dir");
    let site = flag_site(
        &emails_to(port, to),
        &format!("state_dir = \"{}\"", state.path().display()),
    );
    (site, state)
}

/// Adds `lines` to the site's [emails] table.
fn set_emails(site: &Site, lines: &str) {
    let config = std::fs::read_to_string(site.config()).expect("read config");
    let config = config.replace("[emails]\n", &format!("[emails]\n{lines}"));
    std::fs::write(site.config(), config).expect("write config");
}

fn emails_to(port: u16, to: &str) -> String {
    dedent(&format!(
        r#"
            to = [{to}]
            smtp_host = "127.0.0.1:{port}"
        "#
    ))
}

#[test]
fn problem_and_recovery_form_one_thread_to_every_recipient() {
    let site = flag_site("", "");
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    set_emails(
        &site,
        &emails_to(port, "\"ops@example.org\", \"Second <oncall@example.net>\""),
    );
    site.down("FLAG CRITICAL - it broke|load=9\nsecond line of detail\n");
    let daemon: Daemon = site.daemon(&[]);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(
        problem.header("subject"),
        "[picomon] Problem: homepage on front web"
    );
    assert!(
        problem.header("to").contains("ops@example.org"),
        "{:?}",
        problem.headers
    );
    assert!(problem.header("to").contains("oncall@example.net"));
    let rcpt = problem.header("x-rcptto");
    assert!(
        rcpt.contains("ops@example.org") && rcpt.contains("oncall@example.net"),
        "{rcpt}"
    );
    assert_eq!(problem.header("auto-submitted"), "auto-generated");
    assert_eq!(problem.header("x-auto-response-suppress"), "All");
    let id = problem.header("message-id").to_string();
    assert!(
        id.starts_with('<') && id.ends_with("@monitor.example.org>"),
        "{id}"
    );
    assert!(
        problem.body.contains("FLAG CRITICAL - it broke"),
        "{}",
        problem.body
    );
    assert!(problem.body.contains("second line of detail"));
    assert!(problem.body.contains("Target:   front web"));

    site.up();
    let msgs = smtp.wait_messages(2, LONG);
    let ok = &msgs[1];
    assert_eq!(ok.header("subject"), "[picomon] OK: homepage on front web");
    assert_eq!(ok.header("in-reply-to"), id);
    assert_eq!(ok.header("references"), id);
    assert_ne!(ok.header("message-id"), id);
    assert!(ok.body.contains("recovered after"), "{}", ok.body);
    assert!(ok.body.contains(" failed run"), "{}", ok.body);
    // One connection carried both mails.
    assert_eq!(smtp.ehlo_count(), 1, "the SMTP connection was not reused");
    drop(daemon);
    assert_eq!(
        smtp.messages().len(),
        2,
        "exactly one problem and one recovery"
    );
}

#[test]
fn a_mail_queued_while_the_server_is_down_arrives_once_when_it_is_back() {
    let port = SmtpServer::free_port();
    let site = flag_site(&emails_to(port, "\"ops@example.org\""), "");
    site.down("FLAG CRITICAL - down");
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("mail delivery to 127.0.0.1", 2, LONG);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let msgs = smtp.wait_messages(1, LONG);
    assert!(msgs[0].body.starts_with("(queued "), "{}", msgs[0].body);
    assert!(
        msgs[0].body.contains("Connection refused"),
        "{}",
        msgs[0].body
    );
    assert!(
        msgs[0].body.contains("FLAG CRITICAL - down"),
        "{}",
        msgs[0].body
    );
    daemon.wait_log("mail sent to", 1, LONG);
    // Three more failed runs later, still the one mail.
    let runs = daemon
        .stderr()
        .matches("homepage/web/ipv4: CRITICAL in")
        .count();
    daemon.wait_log("homepage/web/ipv4: CRITICAL in", runs + 3, LONG);
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(daemon.stderr().matches("mail sent to").count(), 1);
}

#[test]
fn a_mail_spooled_before_a_restart_is_sent_once_and_the_recovery_threads_under_it() {
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"ops@example.org\"");
    site.down("FLAG CRITICAL - down before restart");
    let mut daemon = site.daemon(&[]);
    daemon.wait_log("mail delivery to 127.0.0.1", 1, LONG);
    let spooled = state.path().join("outbox");
    let count = || {
        std::fs::read_dir(&spooled)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(count(), 1, "the mail is on disk");
    let spooled_id = spooled_message_ids(&spooled).remove(0);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
    assert!(
        daemon
            .stderr()
            .contains("stopping with 1 mails unsent, kept in"),
        "{}",
        daemon.stderr()
    );
    assert!(!daemon.stderr().contains("lost"), "{}", daemon.stderr());
    assert_eq!(count(), 1, "the mail is still on disk after the stop");

    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.up();
    let daemon = site.daemon(&[]);
    // The spooled Problem, then the OK of the recovery seen after the
    // restart, threaded under it thanks to the saved state.
    let msgs = smtp.wait_messages(2, LONG);
    assert!(
        msgs[0].body.contains("down before restart"),
        "{}",
        msgs[0].body
    );
    // Sent again after failed attempts and a restart, the mail keeps its
    // Message-ID, so that mail clients fold copies.
    assert_eq!(msgs[0].header("message-id"), spooled_id);
    assert_eq!(msgs[1].header("in-reply-to"), msgs[0].header("message-id"));
    daemon.wait_log("mail sent to", 2, LONG);
    crate::harness::wait_for("the spool to empty", LONG, || count() == 0);
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn starttls_with_a_server_certificate_from_a_private_ca_file() {
    let port = SmtpServer::free_port();
    let site = flag_site("", "");
    let (ca, cert, key) = private_ca(site.dir.path());
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Starttls(&cert, &key));
    set_emails(
        &site,
        &dedent(&format!(
            r#"
                {}smtp_security = "starttls"
                smtp_ca_file = "{}"
            "#,
            emails_to(port, "\"ops@example.org\""),
            ca.display(),
        )),
    );
    site.down("FLAG CRITICAL - over TLS");
    let _daemon = site.daemon(&[]);
    let msgs = smtp.wait_messages(1, LONG);
    assert!(msgs[0].body.contains("over TLS"));
}

#[test]
fn tls_from_the_start_smtps() {
    let port = SmtpServer::free_port();
    let site = flag_site("", "");
    let (ca, cert, key) = private_ca(site.dir.path());
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Tls(&cert, &key));
    set_emails(
        &site,
        &dedent(&format!(
            r#"
                {}smtp_security = "tls"
                smtp_ca_file = "{}"
            "#,
            emails_to(port, "\"ops@example.org\""),
            ca.display(),
        )),
    );
    site.down("FLAG CRITICAL - over SMTPS");
    let _daemon = site.daemon(&[]);
    let msgs = smtp.wait_messages(1, LONG);
    assert!(msgs[0].body.contains("over SMTPS"));
}

#[test]
fn starttls_without_trusting_the_certificate_is_refused_and_retried() {
    let port = SmtpServer::free_port();
    let site = flag_site("", "");
    let (_ca, cert, key) = private_ca(site.dir.path());
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Starttls(&cert, &key));
    set_emails(
        &site,
        &format!(
            "{}smtp_security = \"starttls\"\n",
            emails_to(port, "\"ops@example.org\""),
        ),
    );
    site.down("FLAG CRITICAL - untrusted");
    let daemon = site.daemon(&[]);
    daemon.wait_log("mail delivery to 127.0.0.1", 2, LONG);
    assert!(smtp.messages().is_empty());
}

/// The Message-IDs of the mails in a spool directory, by file name.
fn spooled_message_ids(dir: &std::path::Path) -> Vec<String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("spool dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p).expect("read spooled")).expect("json");
            json["message_id"].as_str().expect("message_id").to_string()
        })
        .collect()
}

fn json_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn one_refused_recipient_does_not_cost_the_others_their_alerts() {
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"ops@example.org\", \"reject-me@example.org\"");
    std::fs::write(
        site.config(),
        std::fs::read_to_string(site.config()).expect("read")
            + &dedent(
                r#"
                    [emails.report]
                    every = 1
                    subject = "[picomon] report"
                "#,
            ),
    )
    .expect("write");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - one bad address");
    let daemon = site.daemon(&[]);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(problem.header("x-rcptto"), "ops@example.org");
    assert!(problem.body.contains("one bad address"), "{}", problem.body);
    daemon.wait_log("mail refused by 127.0.0.1", 1, LONG);
    let log = daemon.stderr();
    assert!(
        log.contains("for reject-me@example.org, who will not get it"),
        "{log}"
    );
    assert!(log.contains("no such user here"), "{log}");
    // The next report tells the refusal, once.
    crate::harness::wait_for("two reports", LONG, || {
        smtp.messages()
            .iter()
            .filter(|m| m.header("subject") == "[picomon] report")
            .count()
            >= 2
    });
    let reports: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.header("subject") == "[picomon] report")
        .collect();
    assert!(
        reports[0].body.contains("reject-me@example.org: ")
            && reports[0].body.contains("no such user here"),
        "{}",
        reports[0].body
    );
    site.up();
    crate::harness::wait_for("the recovery", LONG, || {
        smtp.messages()
            .iter()
            .any(|m| m.header("subject") == "[picomon] OK: homepage on front web")
    });
    crate::harness::wait_for("the spool to empty", LONG, || {
        json_files(&state.path().join("outbox")) == 0
    });
    assert_eq!(
        json_files(&state.path().join("outbox/rejected")),
        0,
        "a mail was set aside"
    );
}

#[test]
fn a_recipient_deferred_for_now_gets_the_alert_later_and_the_others_get_it_once() {
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"ops@example.org\", \"later@example.org\"");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    smtp.fault("defer", "");
    site.down("FLAG CRITICAL - busy mailbox");
    let daemon = site.daemon(&[]);
    let first = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(first.header("x-rcptto"), "ops@example.org");
    daemon.wait_log(" for later@example.org, tried again for them", 2, LONG);
    assert_eq!(smtp.messages().len(), 1, "ops@ got the mail twice");
    assert_eq!(
        json_files(&state.path().join("outbox")),
        1,
        "the mail waits on disk for its last recipient"
    );
    smtp.fixed("defer");
    let msgs = smtp.wait_messages(2, LONG);
    assert_eq!(msgs[1].header("x-rcptto"), "later@example.org");
    assert_eq!(msgs[1].header("message-id"), first.header("message-id"));
    // The header still names both.
    assert!(msgs[1].header("to").contains("ops@example.org"));
    crate::harness::wait_for("the spool to empty", LONG, || {
        json_files(&state.path().join("outbox")) == 0
    });
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn a_server_refusing_every_mail_for_good_gets_them_after_it_is_fixed() {
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"ops@example.org\"");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    smtp.fault("refuse-data", "");
    site.down("FLAG CRITICAL - refused by policy");
    let daemon = site.daemon(&[]);
    daemon.wait_log("mail refused by 127.0.0.1", 1, LONG);
    let log = daemon.stderr();
    // smtp_retry_timeout is 0.5 s: ten of them.
    assert!(log.contains("kept and tried again in 5s"), "{log}");
    assert!(log.contains("message refused by policy"), "{log}");
    assert_eq!(json_files(&state.path().join("outbox")), 1);
    assert_eq!(json_files(&state.path().join("outbox/rejected")), 0);
    smtp.fixed("refuse-data");
    let msgs = smtp.wait_messages(1, LONG);
    assert!(
        msgs[0].body.contains("refused by policy"),
        "{}",
        msgs[0].body
    );
    crate::harness::wait_for("the spool to empty", LONG, || {
        json_files(&state.path().join("outbox")) == 0
    });
}

#[test]
fn a_mail_every_recipient_refuses_is_kept_not_thrown_away() {
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"reject-me@example.org\"");
    let _smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - refused");
    let daemon = site.daemon(&[]);
    daemon.wait_log("for every recipient, kept", 1, LONG);
    assert!(
        daemon.stderr().contains("no such user here"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(json_files(&state.path().join("outbox")), 1);
    assert_eq!(json_files(&state.path().join("outbox/rejected")), 0);
}

#[test]
fn an_unreadable_spooled_mail_is_set_aside_saying_why_and_temporary_leftovers_are_removed() {
    let port = SmtpServer::free_port();
    let state = tempfile::tempdir().expect("state dir");
    let outbox = state.path().join("outbox");
    std::fs::create_dir_all(&outbox).expect("mkdir");
    std::fs::write(outbox.join("0001-000001.json"), "{ half a mail").expect("write");
    std::fs::write(outbox.join(".0002-000002.json.tmp"), "{ half").expect("write");
    let site = flag_site(
        &emails_to(port, "\"ops@example.org\""),
        &format!("state_dir = \"{}\"", state.path().display()),
    );
    let daemon = site.daemon(&[]);
    daemon.wait_log("picomon started", 1, LONG);
    let log = daemon.stderr();
    assert!(
        log.contains("0001-000001.json: unreadable spooled mail"),
        "{log}"
    );
    assert!(log.contains("removed 1 leftover temporary files"), "{log}");
    assert!(outbox.join("rejected/0001-000001.json").exists());
    assert!(!outbox.join(".0002-000002.json.tmp").exists());
}

#[test]
fn plugin_output_cannot_inject_headers() {
    let port = SmtpServer::free_port();
    let site = flag_site(&emails_to(port, "\"ops@example.org\""), "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("CRITICAL\r\nBcc: victim@example.org\r\nSubject: pwned\r\n\r\nbody");
    let _daemon = site.daemon(&[]);
    let msg = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(msg.header("bcc"), "");
    assert_eq!(
        msg.header("subject"),
        "[picomon] Problem: homepage on front web"
    );
    assert_eq!(msg.header("x-rcptto"), "ops@example.org");
}

#[test]
fn no_recipients_means_mails_are_only_logged() {
    let site = flag_site("to = []\n", "");
    site.down("FLAG CRITICAL - nobody told");
    let daemon = site.daemon(&[]);
    daemon.wait_log(
        "mail not sent (emails.to is empty): [picomon] Problem: homepage on front web",
        1,
        LONG,
    );
}

#[test]
fn a_report_lists_failing_checks_first() {
    let port = SmtpServer::free_port();
    let site = flag_site(&emails_to(port, "\"ops@example.org\""), "");
    std::fs::write(
        site.config(),
        std::fs::read_to_string(site.config()).expect("read")
            + &dedent(
                r#"
                    [emails.report]
                    every = 1
                    subject = "[picomon] still broken"
                    [checks.fine]
                    type = "command"
                    command = ["true"]
                "#,
            ),
    )
    .expect("write");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - long outage");
    let _daemon = site.daemon(&[]);
    crate::harness::wait_for("a report", LONG, || {
        smtp.messages()
            .iter()
            .any(|m| m.header("subject") == "[picomon] still broken")
    });
    let msgs = smtp.messages();
    let report = msgs
        .iter()
        .find(|m| m.header("subject") == "[picomon] still broken")
        .expect("report");
    let failing = report
        .body
        .find("homepage")
        .expect("failing check in the report");
    let fine = report.body.find("fine").expect("ok check in the report");
    assert!(failing < fine, "{}", report.body);
    assert!(report.body.contains("long outage"), "{}", report.body);
    assert_eq!(report.header("auto-submitted"), "auto-generated");
}

#[test]
fn one_pass_never_sends_mail() {
    let port = SmtpServer::free_port();
    let site = flag_site(&emails_to(port, "\"ops@example.org\""), "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - one pass");
    let out = site.run(&["-1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(smtp.ehlo_count(), 0, "-1 connected to the SMTP server");
}

#[test]
fn smtp_auth_with_the_password_from_the_environment() {
    let port = SmtpServer::free_port();
    let site = flag_site(
        &format!(
            "{}smtp_user = \"picomon\"\n",
            emails_to(port, "\"ops@example.org\"")
        ),
        "",
    );
    let smtp = SmtpServer::start_with_auth(site.dir.path(), port, "picomon", "s3cret");
    site.down("FLAG CRITICAL - authenticated");
    let mut cmd = site.picomon();
    cmd.env("PICOMON_EMAILS__SMTP_PASSWORD", "s3cret");
    let _daemon = site.spawn_daemon(cmd, &[]);
    let msgs = smtp.wait_messages(1, LONG);
    assert!(msgs[0].body.contains("authenticated"));
}

#[test]
fn an_idle_smtp_connection_is_closed_after_the_keepalive_timeout() {
    let port = SmtpServer::free_port();
    let site = flag_site(
        &format!(
            "{}smtp_keepalive_timeout = 0.5\n",
            emails_to(port, "\"ops@example.org\"")
        ),
        "",
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - keepalive");
    let _daemon = site.daemon(&[]);
    smtp.wait_messages(1, LONG);
    crate::harness::wait_for("picomon to close the idle connection", LONG, || {
        smtp.quit_count() == 1
    });
    site.up();
    smtp.wait_messages(2, LONG);
    assert_eq!(smtp.ehlo_count(), 2, "the OK mail needed a new connection");
}

#[test]
fn a_recovery_after_a_restart_replies_to_the_problem_mail_sent_before_it() {
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"ops@example.org\"");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - before the restart");
    let mut daemon = site.daemon(&[]);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    daemon.wait_log("mail sent to", 1, LONG);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
    // The saved state holds no Message-ID: the thread follows from the
    // instance and the time it started failing.
    let saved = std::fs::read_to_string(state.path().join("state.json")).expect("state");
    assert!(
        !saved.contains(problem.header("message-id")),
        "the Message-ID was written into the state: {saved}"
    );
    site.up();
    let _daemon = site.daemon(&[]);
    let msgs = smtp.wait_messages(2, LONG);
    assert_eq!(
        msgs[1].header("subject"),
        "[picomon] OK: homepage on front web"
    );
    assert_eq!(msgs[1].header("in-reply-to"), problem.header("message-id"));
    assert_eq!(msgs[1].header("references"), problem.header("message-id"));
}

/// `picomon` with its `state_dir` on a full filesystem: a small tmpfs in a
/// mount namespace of its own (so nothing outside sees it, and it goes
/// away with the process), filled before picomon starts. The test reaches
/// into it through /proc/PID/root. Returns the daemon and the tmpfs path.
fn daemon_on_a_full_disk(smtp_port: u16) -> (Site, Daemon, tempfile::TempDir) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test mounts a tmpfs in a private mount namespace and needs root (as scripts/test runs in CI)"
    );
    let mount_point = tempfile::tempdir().expect("mount point");
    let full = mount_point.path();
    let site = flag_site(
        &emails_to(smtp_port, "\"ops@example.org\""),
        &format!("state_dir = \"{}/state\"", full.display()),
    );
    let mut cmd = std::process::Command::new("unshare");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PICOMON_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("JOURNAL_STREAM")
        .current_dir(site.dir.path())
        .env("FULL", full)
        .env("TEST_BINARY", crate::harness::bin("picomon"))
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=256k tmpfs \"$FULL\" && mkdir \"$FULL/state\" && \
             { dd if=/dev/zero of=\"$FULL/fill\" bs=4k 2>/dev/null; true; } && \
             exec \"$TEST_BINARY\" \"$@\"",
            "sh",
        ]);
    let daemon = site.spawn_daemon(cmd, &[]);
    (site, daemon, mount_point)
}

#[test]
fn a_mail_that_could_not_be_spooled_on_a_full_disk_is_spooled_when_space_comes_back_and_sent() {
    let port = SmtpServer::free_port();
    let (site, daemon, mount_point) = daemon_on_a_full_disk(port);
    let full = mount_point.path();
    site.down("FLAG CRITICAL - disk full");
    daemon.wait_log("keeping it in memory", 1, LONG);
    let inside = std::path::PathBuf::from(format!("/proc/{}/root", daemon.pid()))
        .join(full.strip_prefix("/").expect("absolute"));
    assert_eq!(json_files(&inside.join("state/outbox")), 0);
    std::fs::remove_file(inside.join("fill")).expect("free the space");
    crate::harness::wait_for("the mail to reach the disk", LONG, || {
        json_files(&inside.join("state/outbox")) == 1
    });
    daemon.wait_log("spooled in", 1, LONG);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let msgs = smtp.wait_messages(1, LONG);
    assert!(msgs[0].body.contains("disk full"), "{}", msgs[0].body);
    crate::harness::wait_for("the spool to empty", LONG, || {
        json_files(&inside.join("state/outbox")) == 0
    });
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn a_stop_on_a_full_disk_says_the_mail_is_lost_instead_of_kept() {
    let port = SmtpServer::free_port();
    let (site, mut daemon, _mount_point) = daemon_on_a_full_disk(port);
    site.down("FLAG CRITICAL - disk full at the stop");
    daemon.wait_log("keeping it in memory", 1, LONG);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
    let log = daemon.stderr();
    assert!(
        log.contains("stopping: mail lost (it could not be written to")
            && log.contains("[picomon] Problem: homepage on front web"),
        "{log}"
    );
    assert!(log.contains("1 mails lost in all"), "{log}");
    assert!(!log.contains("unsent, kept in"), "{log}");
}

#[test]
fn sigterm_with_200_mails_queued_for_a_slow_server_exits_within_the_grace_and_a_restart_sends_none_twice(
) {
    let port = SmtpServer::free_port();
    let state = tempfile::tempdir().expect("state dir");
    let config = backlog_config(200, port, state.path());
    let site = Site::new(&config);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    smtp.fault("slow", "1");
    let mut daemon = site.daemon(&[]);
    daemon.wait_log(": PROBLEM ", 200, Duration::from_secs(120));
    smtp.wait_messages(1, LONG);
    let asked = std::time::Instant::now();
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
    let took = asked.elapsed();
    // The grace is 5 s, one step at most 1 s more; some slack for a busy
    // machine, far below the 200 s the backlog would take.
    assert!(
        took < Duration::from_secs(10),
        "the stop took {took:?}:\n{}",
        daemon.stderr()
    );
    let delivered = smtp.messages().len();
    let spooled = json_files(&state.path().join("outbox"));
    assert!(delivered < 200, "everything was sent before the stop");
    assert_eq!(
        delivered + spooled,
        200,
        "{delivered} delivered and {spooled} spooled"
    );
    assert!(
        daemon
            .stderr()
            .contains(&format!("stopping with {spooled} mails unsent, kept in")),
        "{}",
        daemon.stderr()
    );

    smtp.fixed("slow");
    let _daemon = site.daemon(&[]);
    let msgs = smtp.wait_messages(200, Duration::from_secs(120));
    crate::harness::wait_for("the spool to empty", LONG, || {
        json_files(&state.path().join("outbox")) == 0
    });
    let msgs = if msgs.len() < smtp.messages().len() {
        smtp.messages()
    } else {
        msgs
    };
    let ids: std::collections::BTreeSet<_> = msgs
        .iter()
        .map(|m| m.header("message-id").to_string())
        .collect();
    assert_eq!(ids.len(), 200, "a check's alert is missing");
    assert_eq!(msgs.len(), 200, "some mail arrived twice");
}

#[track_caller]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn spooled_mails_and_the_state_file_are_private_under_umask_022() {
    use std::os::unix::process::CommandExt;
    let port = SmtpServer::free_port();
    let (site, state) = spooled_flag_site(port, "\"ops@example.org\"");
    let outbox = state.path().join("outbox");
    std::fs::create_dir_all(&outbox).expect("mkdir");
    std::fs::write(outbox.join("0001-000001.json"), "not a mail").expect("write");
    let mut cmd = site.picomon();
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    site.down("FLAG CRITICAL - private");
    let daemon = site.spawn_daemon(cmd, &[]);
    daemon.wait_log("mail delivery to 127.0.0.1", 1, LONG);
    let spooled: Vec<_> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(spooled.len(), 1);
    assert_eq!(mode(&spooled[0]), 0o600, "{}", spooled[0].display());
    assert_eq!(mode(&outbox.join("rejected")), 0o700);
    assert_eq!(mode(&outbox.join("rejected/0001-000001.json")), 0o600);
    // Saved right after the mail is queued: the first delivery attempt
    // may be logged before the save is done.
    crate::harness::wait_for("the state file", LONG, || {
        state.path().join("state.json").exists()
    });
    assert_eq!(mode(&state.path().join("state.json")), 0o600);
}

#[test]
fn a_kept_connection_the_server_dropped_does_not_delay_the_next_mail() {
    let port = SmtpServer::free_port();
    let site = flag_site(&emails_to(port, "\"ops@example.org\""), "");
    let config = std::fs::read_to_string(site.config()).expect("read");
    std::fs::write(
        site.config(),
        config.replace("smtp_retry_timeout = 0.5", "smtp_retry_timeout = 300"),
    )
    .expect("write");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - first");
    let daemon = site.daemon(&[]);
    smtp.wait_messages(1, LONG);
    daemon.wait_log("mail sent to", 1, LONG);
    // A new server on the same port: picomon's kept connection is dead.
    drop(smtp);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.up();
    daemon.wait_log("mail sent to", 2, LONG);
    assert!(
        !daemon.stderr().contains("failed, retrying"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn every_mail_queued_through_an_smtp_outage_says_it_was_queued_and_why() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 0.2
default_retry = 0

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[hosts.web]
ipv4 = "127.0.0.1"

[hosts.db]
ipv4 = "127.0.0.1"

[checks.homepage]
type = "command"
hosts = ["web", "db"]
command = ["{plugin}"]
"#
        ),
    );
    site.down("FLAG CRITICAL - down");
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("mail delivery to 127.0.0.1", 2, LONG);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let msgs = smtp.wait_messages(2, LONG);
    for mail in &msgs {
        assert!(
            mail.body.starts_with("(queued ") && mail.body.contains("Connection refused"),
            "{}: {}",
            mail.header("subject"),
            mail.body
        );
    }
    drop(daemon);
    assert_eq!(smtp.messages().len(), 2);
}
