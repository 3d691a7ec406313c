//! A plugin that prints terminal escapes (issue 21): a check echoing a
//! remote server could clear the operator's screen or retitle the window
//! through `picomon status`, `-1`, the SIGUSR1 dump, the log or a mail.
//! Everywhere its control characters are shown escaped; `--json` keeps
//! the output as it was, JSON-escaped.

use std::time::Duration;

use crate::campaign::LONG;
use crate::harness::{mail_config, wait_for, Site};
use crate::smtp::{Security, SmtpServer};

/// What the plugin prints: a window title (OSC ... BEL), clear screen
/// (CSI 2J), a carriage return over the line, and a C1 CSI, U+009B.
const HOSTILE: &str =
    r"printf 'WEB CRITICAL - \033]0;owned\007\033[2Jgone\rfake \302\23331m\n'; exit 2";

/// The escaped line as shown.
const SHOWN: &str = r"WEB CRITICAL - \x1b]0;owned\x07\x1b[2Jgone\rfake \u{9b}31m";

/// Fails when `text` holds a control character other than newline.
#[track_caller]
fn assert_no_controls(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what} carries {bad:?}:\n{text}");
}

#[test]
fn a_plugin_printing_terminal_escapes_cannot_clear_the_operators_screen() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = site.plugin("hostile", HOSTILE);
    site.write(
        "site.toml",
        &mail_config(
            port,
            &site.path("state"),
            "",
            &format!(
                r#"
                    [checks.web]
                    type = "command"
                    command = ["{plugin}"]
                "#
            ),
        ),
    );

    let once = site.run(&["-1"]);
    assert_eq!(once.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&once.stdout);
    assert_no_controls("picomon -1", &stdout);
    assert!(stdout.contains(SHOWN), "{stdout}");

    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let daemon = site.daemon(&[]);
    let mails = smtp.wait_messages(1, LONG);
    assert_no_controls("the Problem mail", &mails[0].body);
    assert!(mails[0].body.contains(SHOWN), "{}", mails[0].body);
    daemon.wait_log(": PROBLEM ", 1, LONG);
    let log = daemon.stderr();
    assert_no_controls("the log", &log);
    assert!(log.contains(SHOWN), "{log}");

    let status = site.run(&["status"]);
    assert_eq!(status.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert_no_controls("picomon status", &stdout);
    assert!(stdout.contains(SHOWN), "{stdout}");

    daemon.signal(libc::SIGUSR1);
    wait_for("the SIGUSR1 dump", Duration::from_secs(30), || {
        daemon.stdout().contains("Other checks")
    });
    let dump = daemon.stdout();
    assert_no_controls("the SIGUSR1 dump", &dump);
    assert!(dump.contains(SHOWN), "{dump}");

    // JSON keeps the output as the plugin printed it.
    let json = site.run(&["status", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let output = view["instances"][0]["output"].as_str().unwrap_or_default();
    assert!(output.contains("\u{1b}[2Jgone\rfake \u{9b}31m"), "{view}");
}
