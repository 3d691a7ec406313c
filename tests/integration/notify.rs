//! `[notify.NAME]` with `type = "command"`: a real script told every
//! switch in its environment, retried until it exits 0, and its queue
//! kept across a `kill -9` of picomon.

use std::time::Duration;

use crate::harness::{dedent, wait_for, Site};

const LONG: Duration = Duration::from_secs(30);

/// A notifier script that appends one line per delivered event to
/// `delivered`, after failing (exit 1) while the file `broken` exists;
/// every attempt is counted in `attempts`.
fn notifier(site: &Site) -> String {
    let (delivered, broken, attempts) = (
        site.path("delivered"),
        site.path("broken"),
        site.path("attempts"),
    );
    site.plugin(
        "notify.sh",
        &format!(
            "echo x >> {attempts}\n\
             if [ -e {broken} ]; then echo 'ntfy down' >&2; exit 1; fi\n\
             echo \"$NOTIFY_STATE|$NOTIFY_SEVERITY|$NOTIFY_CHECK|$NOTIFY_INSTANCE|$NOTIFY_TARGET|$NOTIFY_OUTPUT|$NOTIFY_SUBJECT|$(env | grep -c ^PICOMON_)\" >> {delivered}",
            attempts = attempts.display(),
            broken = broken.display(),
            delivered = delivered.display(),
        ),
    )
}

fn lines(site: &Site, name: &str) -> Vec<String> {
    std::fs::read_to_string(site.path(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn config(site: &Site, notify: &str, retry_every: &str) -> String {
    let plugin = site.flag_plugin();
    dedent(&format!(
        r#"
            base_tick = 0.2
            state_dir = "{}"
            [checks.flag]
            type = "command"
            command = ["{plugin}"]
            retry = 0
            [notify.ntfy]
            type = "command"
            command = ["{notify}"]
            retry_every = {retry_every}
        "#,
        site.path("state").display()
    ))
}

#[test]
fn a_notify_command_is_told_the_problem_and_the_recovery_in_its_environment() {
    let site = Site::new("");
    let notify = notifier(&site);
    site.write("site.toml", &config(&site, &notify, "60"));
    site.down("FLAG CRITICAL - disk on fire");
    let mut cmd = site.picomon();
    // Configuration (and secrets) never reach a notifier.
    cmd.env("PICOMON_LOG_LEVEL", "info");
    let daemon = site.spawn_daemon(cmd, &["-D"]);
    wait_for("the problem delivered", LONG, || {
        lines(&site, "delivered").len() == 1
    });
    site.up();
    wait_for("the recovery delivered", LONG, || {
        lines(&site, "delivered").len() == 2
    });
    let got = lines(&site, "delivered");
    assert_eq!(
        got[0],
        "Problem|CRITICAL|flag|flag|flag|FLAG CRITICAL - disk on fire|[picomon] Problem: flag|0",
        "{}",
        daemon.stderr()
    );
    assert!(
        got[1].starts_with("OK|OK|flag|flag|flag|FLAG OK - fine|[picomon] OK: flag|0"),
        "{got:?}"
    );
    daemon.wait_log("notify.ntfy: delivered", 2, LONG);
}

#[test]
fn a_notifier_failing_twice_then_succeeding_delivers_exactly_once_and_in_order() {
    let site = Site::new("");
    let notify = notifier(&site);
    site.write("site.toml", &config(&site, &notify, "0.3"));
    site.write("broken", "");
    site.down("FLAG CRITICAL - down");
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log(
        "notify.ntfy: \"[picomon] Problem: flag\" not delivered: ",
        2,
        LONG,
    );
    // The recovery queues behind the problem that is not delivered yet.
    site.up();
    daemon.wait_log("flag: RECOVERED", 1, LONG);
    std::fs::remove_file(site.path("broken")).expect("mend the notifier");
    wait_for("both delivered", LONG, || {
        lines(&site, "delivered").len() == 2
    });
    let got = lines(&site, "delivered");
    assert!(got[0].starts_with("Problem|"), "{got:?}");
    assert!(got[1].starts_with("OK|"), "{got:?}");
    let log = daemon.stderr();
    let failed = log.matches("not delivered: ").count();
    assert!(failed >= 2, "{log}");
    // One attempt per failure logged, then one per delivery: no extra run.
    assert_eq!(lines(&site, "attempts").len(), failed + 2, "{log}");
    assert!(log.contains("exit code 1: ntfy down"), "{log}");
}

#[test]
fn a_notification_queued_when_picomon_is_killed_is_delivered_after_the_restart() {
    let site = Site::new("");
    let notify = notifier(&site);
    site.write("site.toml", &config(&site, &notify, "0.3"));
    site.write("broken", "");
    site.down("FLAG CRITICAL - down");
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("not delivered: ", 1, LONG);
    daemon.child.kill().expect("kill -9 picomon");
    daemon.child.wait().expect("reap picomon");
    std::fs::remove_file(site.path("broken")).expect("mend the notifier");
    assert!(lines(&site, "delivered").is_empty());

    let again = site.daemon(&["-D"]);
    wait_for("the queued problem delivered", LONG, || {
        lines(&site, "delivered").len() == 1
    });
    assert!(
        again
            .stderr()
            .contains("1 notifications still queued from before"),
        "{}",
        again.stderr()
    );
    // Still failing after the restart: the saved state knows the problem
    // was told, so no second notification comes for it.
    let runs = |d: &crate::harness::Daemon| d.stderr().matches("flag: CRITICAL in").count();
    let seen = runs(&again);
    wait_for("three more runs", LONG, || runs(&again) >= seen + 3);
    assert_eq!(lines(&site, "delivered").len(), 1, "{}", again.stderr());
    assert!(lines(&site, "delivered")[0].starts_with("Problem|CRITICAL|flag|"));
}

/// A loopback HTTP server that keeps each request (head and body) it
/// answers with 200, as ntfy would.
fn recording_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let (mut head, mut line, mut length) = (String::new(), String::new(), 0);
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            let request = format!("{head}\n{}", String::from_utf8_lossy(&body));
            keep.lock().expect("requests").push(request);
        }
    });
    (port, seen)
}

#[test]
fn the_readme_ntfy_example_posts_the_alert() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let command = readme
        .split("[notify.ntfy]\n")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.starts_with("command = ")))
        .expect("README.md shows a [notify.ntfy] command");
    assert!(command.contains("https://ntfy.example/topic"), "{command}");
    let (port, seen) = recording_server();
    let command = command.replace(
        "https://ntfy.example/topic",
        &format!("http://127.0.0.1:{port}/topic"),
    );
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [checks.web]
                type = "command"
                command = ["{plugin}"]
                retry = 0
                [notify.ntfy]
                type = "command"
                {command}
            "#
        )),
    );
    site.down("FLAG CRITICAL - 'quoted' \"words\" $(touch pwned)");
    let daemon = site.daemon(&["-D"]);
    wait_for("a POST at the ntfy server", LONG, || {
        !seen.lock().expect("requests").is_empty()
    });
    let request = seen.lock().expect("requests")[0].clone();
    assert!(request.starts_with("POST /topic "), "{request}");
    assert!(
        request.contains("Title: [picomon] Problem: web\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with("\nFLAG CRITICAL - 'quoted' \"words\" $(touch pwned)"),
        "{request}"
    );
    assert!(
        !site.path("pwned").exists(),
        "plugin output ran as a command"
    );
    daemon.wait_log("notify.ntfy: delivered", 1, LONG);
}

#[test]
fn picomon_dash_1_never_notifies() {
    let site = Site::new("");
    let notify = notifier(&site);
    site.write("site.toml", &config(&site, &notify, "60"));
    site.down("FLAG CRITICAL - down");
    let out = site.run(&["-1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FLAG CRITICAL - down"));
    assert!(!site.path("attempts").exists(), "picomon -1 ran a notifier");
}

#[test]
fn a_notifier_added_by_a_reload_is_told_the_next_switch() {
    let site = Site::new("");
    let notify = notifier(&site);
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [checks.flag]
                type = "command"
                command = ["{plugin}"]
                retry = 0
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("flag: OK in", 1, LONG);
    site.write("site.toml", &config(&site, &notify, "60"));
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("configuration reloaded", 1, LONG);
    site.down("FLAG CRITICAL - down");
    wait_for("the problem delivered", LONG, || {
        lines(&site, "delivered").len() == 1
    });
    assert!(lines(&site, "delivered")[0].starts_with("Problem|CRITICAL|flag|"));
}

#[test]
fn a_hung_notifier_is_killed_with_its_children_at_its_timeout_and_checks_go_on() {
    let site = Site::new("");
    let pids = site.path("pids");
    let hang = site.plugin(
        "hang.sh",
        &format!(
            "sleep 300 &\necho $! >> {0}\necho $$ >> {0}\nwait",
            pids.display()
        ),
    );
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [checks.flag]
                type = "command"
                command = ["{plugin}"]
                retry = 0
                [notify.hang]
                type = "command"
                command = ["{hang}"]
                timeout = 0.5
                retry_every = 30
            "#
        )),
    );
    site.down("FLAG CRITICAL - down");
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("killed after the timeout of 0.5s", 1, LONG);
    let runs = daemon.stderr().matches("flag: CRITICAL in").count();
    let started: Vec<u32> = lines(&site, "pids")
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    for pid in started {
        wait_for(&format!("notifier process {pid} killed"), LONG, || {
            !crate::harness::alive(pid)
        });
    }
    // The queue waits for its next try; the checks do not.
    wait_for("checks running on", LONG, || {
        daemon.stderr().matches("flag: CRITICAL in").count() >= runs + 3
    });
    // A notifier still owed a delivery does not hold back a stop.
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(LONG).success(), "{}", daemon.stderr());
}

#[test]
fn each_switch_of_a_digest_is_notified_on_its_own() {
    let site = Site::new("");
    let notify = notifier(&site);
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [emails]
                digest_over = 1
                [checks.a]
                type = "command"
                command = ["{plugin}"]
                retry = 0
                [checks.b]
                type = "command"
                command = ["{plugin}"]
                retry = 0
                [notify.ntfy]
                type = "command"
                command = ["{notify}"]
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("a: OK in", 1, LONG);
    daemon.wait_log("b: OK in", 1, LONG);
    site.down("FLAG CRITICAL - down");
    daemon.wait_log("2 problems told in one digest mail", 1, LONG);
    wait_for("both problems delivered", LONG, || {
        lines(&site, "delivered").len() == 2
    });
    let mut checks: Vec<String> = lines(&site, "delivered")
        .iter()
        .map(|l| l.split('|').take(3).collect::<Vec<_>>().join("|"))
        .collect();
    checks.sort();
    assert_eq!(checks, ["Problem|CRITICAL|a", "Problem|CRITICAL|b"]);
}

#[test]
fn a_silenced_switch_is_not_notified_until_its_silence_is_removed() {
    let site = Site::new("");
    let notify = notifier(&site);
    site.write("site.toml", &config(&site, &notify, "60"));
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("flag: OK in", 1, LONG);
    let out = site.run(&[
        "silence", "add", "flag", "--for", "1h", "--reason", "upgrade",
    ]);
    assert!(out.status.success(), "{out:?}");
    site.down("FLAG CRITICAL - rebooting");
    daemon.wait_log("flag: silenced until", 1, LONG);
    let runs = daemon.stderr().matches("flag: CRITICAL in").count();
    daemon.wait_log("flag: CRITICAL in", runs + 5, LONG);
    assert!(
        !site.path("attempts").exists(),
        "a silenced switch was notified"
    );
    let out = site.run(&["silence", "remove", "1"]);
    assert!(out.status.success(), "{out:?}");
    wait_for(
        "the problem delivered once the silence is gone",
        LONG,
        || lines(&site, "delivered").len() == 1,
    );
    assert!(lines(&site, "delivered")[0].starts_with("Problem|CRITICAL|flag|"));
}

#[test]
fn check_config_refuses_a_bad_notifier_with_78_and_dumps_a_good_one() {
    let site = Site::new(&dedent(
        r#"
            [notify.pager]
            type = "pigeon"
            [notify.ntfy]
            type = "command"
            command = []
        "#,
    ));
    let out = site.run(&["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("site.toml: notify.pager.type: unknown notifier type"),
        "{err}"
    );
    assert!(err.contains("notify.ntfy.command"), "{err}");
    site.write(
        "site.toml",
        &dedent(
            r#"
                [notify.ntfy]
                type = "command"
                command = ["/usr/bin/curl", "-d", "x"]
            "#,
        ),
    );
    let out = site.run(&["check-config", "--dump"]);
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        dump.contains(&dedent(
            r#"
                [notify.ntfy]
                type = "command"
                command = ["/usr/bin/curl", "-d", "x"]"#
        )),
        "{dump}"
    );
}
