//! What picomon refuses, and how it says so (issue 21): a password in
//! clear text to a remote server, an invalid configuration under
//! `picomon status` and under a watchdog that has never had a valid one,
//! an empty silence pattern. Each with the exit status the man pages
//! document.

use crate::campaign::LONG;
use crate::harness::{dedent, shown, wait_for, Site};
use crate::smtp::{Security, SmtpServer};

/// An `[emails]` section that authenticates to `host` with `security`.
fn auth_to(host: &str, security: &str) -> String {
    format!(
        r#"[emails]
to = ["ops@example.org"]
smtp_host = "{host}"
smtp_security = "{security}"
smtp_user = "picomon"
smtp_password = "s3cret"
"#
    )
}

#[test]
fn a_password_is_never_sent_in_clear_text_to_a_remote_smtp_server() {
    let site = Site::new(&auth_to("mail.example.org:587", "none"));
    for args in [
        &["check-config"][..],
        &["check-config", "--no-secrets"],
        &[],
    ] {
        let out = site.run(args);
        let text = shown(&out);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("site.toml: emails.smtp_security: ")
                && err.contains("clear text to mail.example.org"),
            "{args:?}: {text}"
        );
    }
    // With TLS, or to this machine's loopback, it is fine.
    for (host, security) in [
        ("mail.example.org:587", "starttls"),
        ("mail.example.org", "tls"),
        ("127.0.0.1:2525", "none"),
        ("127.3.4.5:2525", "none"),
        ("[::1]:2525", "none"),
        ("localhost", "none"),
    ] {
        site.write("site.toml", &auth_to(host, security));
        let out = site.run(&["check-config"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{host} {security}: {}",
            shown(&out)
        );
    }
}

#[test]
fn picomon_status_with_an_invalid_configuration_exits_78_not_3() {
    let site = Site::new("");
    // Invalid only with its secrets: a user without a password.
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                state_dir = "{}"
                [emails]
                smtp_user = "picomon"
            "#,
            site.path("state").display()
        )),
    );
    let out = site.run(&["status"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(78), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no picomon is running with state_dir"),
        "{text}"
    );
    assert!(err.contains("site.toml: emails.smtp_user: "), "{text}");
    // Invalid as it stands: a typo.
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                state_dir = "{}"
                base_tik = 3
            "#,
            site.path("state").display()
        )),
    );
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(78), "{}", shown(&out));
}

#[test]
fn silence_add_with_an_empty_pattern_is_a_usage_error_2_as_documented() {
    let site = Site::new("");
    site.write(
        "site.toml",
        &format!("state_dir = \"{}\"\n", site.path("state").display()),
    );
    let out = site.run(&["silence", "add", "", "--for", "1h", "--reason", "test"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the pattern is empty"),
        "{text}"
    );
    assert!(!site.path("state/silences.json").exists(), "{text}");
}

#[test]
fn the_watchdog_mails_an_invalid_configuration_it_never_had_a_valid_one_of() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    site.write(
        "site.toml",
        &format!(
            r#"state_dir = "{state}"

[emails]
to = ["ops@example.org"]
smtp_host = "127.0.0.1:{port}"
watchdog_subject = "[picomon] watchdog"

[checks.web]
type = "comand"
command = ["true"]
"#,
            state = site.path("state").display()
        ),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let watchdog = site.spawn_daemon(site.command("picomon-watchdog"), &[]);
    watchdog.wait_log("mailing with its [emails] section", 1, LONG);
    let mails = smtp.wait_messages(1, LONG);
    assert_eq!(mails[0].header("subject"), "[picomon] watchdog");
    assert!(
        mails[0].body.contains("exited with status 78"),
        "{}",
        mails[0].body
    );
    assert!(
        mails[0].body.contains("checks.web.type"),
        "the reason is quoted:\n{}",
        mails[0].body
    );
    wait_for("the retry to be planned", LONG, || {
        watchdog.stderr().contains("restarting picomon in 5m 00s")
    });
    assert_eq!(smtp.messages().len(), 1, "{}", watchdog.stderr());
    assert!(
        !watchdog
            .stderr()
            .contains("no valid configuration to mail it with"),
        "{}",
        watchdog.stderr()
    );
}
