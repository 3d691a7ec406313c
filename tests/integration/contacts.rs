//! `[contacts.NAME]`: each check's mail goes to its contacts only, proved
//! by the envelope recipients a real SMTP server records (aiosmtpd's
//! `X-RcptTo`); each contact gets a digest of its own checks (a check
//! of two contacts in both), the same alert once to a mailbox two
//! contacts share; a check without contacts goes to `emails.to`, as
//! before; status shows who is told.

use std::process::Output;
use std::time::Duration;

use crate::harness::Site;
use crate::smtp::{Received, Security, SmtpServer};

const LONG: Duration = Duration::from_secs(30);

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The mails sent to `rcpt` (envelope), by subject.
#[track_caller]
fn subjects_to(mails: &[Received], rcpt: &str) -> Vec<String> {
    let mut subjects: Vec<String> = mails
        .iter()
        .filter(|m| m.header("x-rcptto") == rcpt)
        .map(|m| m.header("subject").to_string())
        .collect();
    subjects.sort();
    subjects
}

#[test]
fn each_contact_gets_the_mail_of_its_own_checks_in_a_digest_of_its_own() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let told = site.path("paged");
    let pager = site.plugin(
        "pager",
        &format!(
            "echo \"$NOTIFY_STATE $NOTIFY_INSTANCE\" >> {}",
            told.display()
        ),
    );
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let check = |name: &str, contacts: &str| {
        format!("[checks.{name}]\ntype = \"command\"\ncommand = [\"{flag}\"]\n{contacts}\n")
    };
    site.write(
        "site.toml",
        &format!(
            r#"base_tick = 0.2
default_retry = 0
state_dir = "{state}"

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5
digest_over = 1

[contacts.web]
to = ["web@example.org"]

[contacts.db]
to = ["db@example.org", "dba@example.org"]
notify = ["pager"]

[notify.pager]
type = "command"
command = ["{pager}"]

{web1}{web2}{db1}{misc}"#,
            state = site.path("state").display(),
            web1 = check("web1", "contacts = [\"web\"]"),
            web2 = check("web2", "contacts = [\"web\"]"),
            db1 = check("db1", "contacts = [\"db\"]"),
            misc = check("misc", ""),
        ),
    );
    let daemon = site.daemon(&["-D"]);
    // What the notifier heard, sorted.
    let paged = || {
        let mut lines: Vec<String> = std::fs::read_to_string(&told)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    daemon.wait_log("misc: OK in", 1, LONG);
    site.down("FLAG CRITICAL - down");
    let mails = smtp.wait_messages(3, LONG);
    assert_eq!(
        subjects_to(&mails, "web@example.org"),
        ["[picomon] Problem: 2 checks on 2 targets"],
        "{mails:?}"
    );
    assert_eq!(
        subjects_to(&mails, "db@example.org, dba@example.org"),
        ["[picomon] Problem: db1"],
        "{mails:?}"
    );
    assert_eq!(
        subjects_to(&mails, "ops@example.org"),
        ["[picomon] Problem: misc"],
        "{mails:?}"
    );

    let status = site.run(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert!(shown.contains("[told: web]"), "{shown}");
    assert!(shown.contains("[told: db]"), "{shown}");

    // The notifier of db hears of db1, and of misc (no contacts: every
    // notifier), never of web's checks.
    daemon.wait_log("notify.pager: delivered", 2, LONG);
    assert_eq!(paged(), ["Problem db1", "Problem misc"]);

    // The recoveries go the same way, each in its contact's thread.
    site.up();
    let mails = smtp.wait_messages(6, LONG);
    let web = subjects_to(&mails, "web@example.org");
    assert_eq!(web.len(), 2, "{mails:?}");
    assert!(web[0].starts_with("[picomon] OK: 2 checks"), "{web:?}");
    assert_eq!(subjects_to(&mails, "ops@example.org").len(), 2, "{mails:?}");
    assert_eq!(
        subjects_to(&mails, "db@example.org, dba@example.org").len(),
        2
    );
    assert_eq!(mails.len(), 6, "{mails:?}");
    daemon.wait_log("notify.pager: delivered", 4, LONG);
    assert_eq!(
        paged(),
        ["OK db1", "OK misc", "Problem db1", "Problem misc"]
    );
}

#[test]
fn a_contact_gets_a_report_of_its_own_checks_only() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write(
        "site.toml",
        &format!(
            r#"base_tick = 0.2
default_retry = 0

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[emails.report]
every = 1
subject = "[picomon] still broken"

[contacts.web]
to = ["web@example.org"]

[checks.web1]
type = "command"
command = ["{flag}"]
contacts = ["web"]

[checks.misc]
type = "command"
command = ["{flag}"]
"#
        ),
    );
    site.down("FLAG CRITICAL - down");
    let _daemon = site.daemon(&[]);
    let report = |mails: &[Received], rcpt: &str| {
        mails
            .iter()
            .find(|m| {
                m.header("subject") == "[picomon] still broken" && m.header("x-rcptto") == rcpt
            })
            .map(|m| m.body.clone())
    };
    let mut web = None;
    let mut ops = None;
    crate::harness::wait_for("a report to web and one to ops", LONG, || {
        let mails = smtp.messages();
        web = report(&mails, "web@example.org");
        ops = report(&mails, "ops@example.org");
        web.is_some() && ops.is_some()
    });
    let (web, ops) = (web.unwrap_or_default(), ops.unwrap_or_default());
    // Both fail: each is listed as "  CRITICAL NAME: failing since …".
    assert!(web.contains(" web1: ") && !web.contains(" misc: "), "{web}");
    assert!(web.contains("[told: web]"), "{web}");
    assert!(ops.contains(" web1: ") && ops.contains(" misc: "), "{ops}");
}

/// The mails whose envelope goes to `rcpt` (among others or alone).
fn received_by<'a>(mails: &'a [Received], rcpt: &str) -> Vec<&'a Received> {
    mails
        .iter()
        .filter(|m| m.header("x-rcptto").split(", ").any(|r| r == rcpt))
        .collect()
}

#[test]
fn in_a_storm_across_overlapping_contacts_each_contact_gets_one_digest_of_its_own_checks() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    // both1's own flag, so that it can fail alone.
    let flag2 = site.plugin(
        "flag2",
        &format!(
            "if [ -e {0} ]; then cat {0}; exit 2; fi\necho 'FLAG OK - fine'",
            site.path("down2").display()
        ),
    );
    let told = site.path("paged");
    let pager = site.plugin(
        "pager",
        &format!(
            "echo \"$NOTIFY_STATE $NOTIFY_INSTANCE\" >> {}",
            told.display()
        ),
    );
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let check = |name: &str, command: &str, contacts: &str| {
        format!("[checks.{name}]\ntype = \"command\"\ncommand = [\"{command}\"]\n{contacts}\n")
    };
    site.write(
        "site.toml",
        &format!(
            r#"base_tick = 0.2
default_retry = 0
state_dir = "{state}"

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5
digest_over = 1

[contacts.web]
to = ["web@example.org", "shared@example.org"]
notify = ["pager"]

[contacts.db]
to = ["db@example.org", "shared@example.org"]
notify = ["pager"]

[notify.pager]
type = "command"
command = ["{pager}"]

{web1}{web2}{both1}{db1}{misc}"#,
            state = site.path("state").display(),
            web1 = check("web1", &flag, "contacts = [\"web\"]"),
            web2 = check("web2", &flag, "contacts = [\"web\"]"),
            both1 = check("both1", &flag2, "contacts = [\"web\", \"db\"]"),
            db1 = check("db1", &flag, "contacts = [\"db\"]"),
            misc = check("misc", &flag, ""),
        ),
    );
    let mut daemon = site.daemon(&["-D"]);
    let paged = || {
        let mut lines: Vec<String> = std::fs::read_to_string(&told)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    daemon.wait_log("misc: OK in", 1, LONG);
    daemon.wait_log("both1: OK in", 1, LONG);
    site.write("down2", "FLAG CRITICAL - down");
    site.down("FLAG CRITICAL - down");
    let mails = smtp.wait_messages(3, LONG);
    // Per envelope recipient: web's digest lists its three checks, db's
    // its two, both listing both1; shared@ gets each contact's digest.
    let count = |rcpt: &str| received_by(&mails, rcpt).len();
    assert_eq!(
        [
            count("web@example.org"),
            count("db@example.org"),
            count("shared@example.org"),
            count("ops@example.org")
        ],
        [1, 1, 2, 1],
        "{mails:?}"
    );
    let web = received_by(&mails, "web@example.org")[0];
    let db = received_by(&mails, "db@example.org")[0];
    assert_eq!(
        web.header("x-rcptto"),
        "web@example.org, shared@example.org"
    );
    assert_eq!(db.header("x-rcptto"), "db@example.org, shared@example.org");
    assert!(
        web.header("subject")
            .starts_with("[picomon] Problem: 3 checks"),
        "{web:?}"
    );
    assert!(
        db.header("subject")
            .starts_with("[picomon] Problem: 2 checks"),
        "{db:?}"
    );
    for (mail, has, lacks) in [
        (web, &["web1", "web2", "both1"][..], "db1"),
        (db, &["both1", "db1"][..], "web1"),
    ] {
        for check in has {
            assert!(
                mail.body.contains(&format!(" {check}: ")),
                "{check}: {mail:?}"
            );
        }
        assert!(
            !mail.body.contains(&format!(" {lacks}: ")),
            "{lacks}: {mail:?}"
        );
    }
    assert_eq!(
        subjects_to(&mails, "ops@example.org"),
        ["[picomon] Problem: misc"]
    );
    // The pager, both contacts' notifier, hears of both1 once.
    daemon.wait_log("notify.pager: delivered", 5, LONG);
    assert_eq!(
        paged(),
        [
            "Problem both1",
            "Problem db1",
            "Problem misc",
            "Problem web1",
            "Problem web2"
        ]
    );

    // A kill -9 keeps each contact's thread (the state file has it).
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(LONG);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("misc: CRITICAL in", 1, LONG);

    // The OKs: one digest each, in the thread of the contact's Problem.
    std::fs::remove_file(site.path("down2")).expect("remove down2");
    site.up();
    let mails = smtp.wait_messages(6, LONG);
    let oks = |rcpt: &str| -> Vec<&Received> {
        received_by(&mails, rcpt)
            .into_iter()
            .filter(|m| m.header("subject").starts_with("[picomon] OK"))
            .collect()
    };
    let (web_ok, db_ok) = (oks("web@example.org"), oks("db@example.org"));
    assert_eq!(
        (web_ok.len(), db_ok.len(), oks("shared@example.org").len()),
        (1, 1, 2)
    );
    assert_eq!(web_ok[0].header("in-reply-to"), web.header("message-id"));
    assert_eq!(db_ok[0].header("in-reply-to"), db.header("message-id"));
    assert_ne!(web.header("message-id"), db.header("message-id"));
    daemon.wait_log("notify.pager: delivered", 5, LONG);
    assert_eq!(paged().iter().filter(|l| l.starts_with("OK ")).count(), 5);

    // both1 alone: one mail to every mailbox of both contacts, shared@
    // once; its OK, one mail too, in its thread.
    site.write("down2", "FLAG CRITICAL - down");
    daemon.wait_log("both1: PROBLEM", 1, LONG);
    std::fs::remove_file(site.path("down2")).expect("remove down2");
    let mails = smtp.wait_messages(8, LONG);
    assert_eq!(mails.len(), 8, "{mails:?}");
    let alone = |subject: &str| -> Vec<&Received> {
        mails
            .iter()
            .filter(|m| m.header("subject") == subject)
            .collect()
    };
    let (problem, ok) = (
        alone("[picomon] Problem: both1"),
        alone("[picomon] OK: both1"),
    );
    assert_eq!((problem.len(), ok.len()), (1, 1), "{mails:?}");
    for mail in [problem[0], ok[0]] {
        assert_eq!(
            mail.header("x-rcptto"),
            "db@example.org, shared@example.org, web@example.org",
            "{mail:?}"
        );
    }
    assert_eq!(ok[0].header("in-reply-to"), problem[0].header("message-id"));
}

#[test]
fn a_check_removed_while_failing_closes_its_thread_with_its_contacts_not_emails_to() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let config = |checks: &str| {
        format!(
            r#"base_tick = 0.2
default_retry = 0

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[contacts.web]
to = ["web@example.org"]

[checks.keep]
type = "command"
command = ["true"]
{checks}"#
        )
    };
    site.write(
        "site.toml",
        &config(&format!(
            "[checks.web1]\ntype = \"command\"\ncommand = [\"{flag}\"]\ncontacts = [\"web\"]\n"
        )),
    );
    site.down("FLAG CRITICAL - down");
    let daemon = site.daemon(&["-D"]);
    let mails = smtp.wait_messages(1, LONG);
    assert_eq!(
        subjects_to(&mails, "web@example.org"),
        ["[picomon] Problem: web1"]
    );
    site.write("site.toml", &config(""));
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("web1: NO LONGER MONITORED", 1, LONG);
    let mails = smtp.wait_messages(2, LONG);
    assert_eq!(mails.len(), 2, "{mails:?}");
    let gone = received_by(&mails, "web@example.org");
    assert_eq!(gone.len(), 2, "the contact, not emails.to: {mails:?}");
    let problem = gone
        .iter()
        .find(|m| m.header("subject") == "[picomon] Problem: web1");
    let closing = gone
        .iter()
        .find(|m| m.header("subject") != "[picomon] Problem: web1");
    let (Some(problem), Some(closing)) = (problem, closing) else {
        panic!("{mails:?}")
    };
    assert_eq!(closing.header("in-reply-to"), problem.header("message-id"));
}
