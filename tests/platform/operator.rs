//! What an operator does with the package, in order, on a booted Debian:
//! install it and run the README's first commands, configure a site that
//! mails a real SMTP server (aiosmtpd, inside the container), run it,
//! reload it, run a second site beside it, stop it, upgrade, remove and
//! purge it; each step checked where the operator would look (mailbox,
//! `picomon status`, `systemctl`, the journal, the file system, dpkg).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::deb::built_package;
use crate::machine::{run_host, Machine};

/// The site: mail to the SMTP server inside, a check the test makes fail
/// and recover (`gate`: OK while /srv/gate-open exists), and ping, which
/// needs the unit's CAP_NET_RAW under its sandbox.
const SITE: &str = r#"
base_tick = 1
default_retry = 0

[emails]
to = ["ops@example.org"]
from = "picomon@platform.example.org"
smtp_host = "127.0.0.1:2525"
smtp_security = "none"

[hosts.localhost]
name = "this machine"
ipv4 = "127.0.0.1"

[checks.ping]
type = "ping"
hosts = ["localhost"]

[checks.gate]
type = "command"
command = ["/usr/bin/test", "-e", "/srv/gate-open"]
"#;

/// A fragment a good reload adds.
const EXTRA: &str = r#"
[checks.extra]
type = "command"
command = ["/usr/bin/true"]
"#;

/// A fragment that does not validate: reload must refuse it.
const BROKEN: &str = r#"
[checks.broken]
type = "command"
command = ["/usr/bin/true"]
no_such_key = 1
"#;

/// What the second site adds to its copy of /etc/picomon.toml.
const SITE_ONLY: &str = r#"
[checks.site-only]
type = "command"
command = ["/usr/bin/true"]
"#;

const MINUTE: Duration = Duration::from_secs(60);

/// The SMTP server's port, inside the container's own network namespace
/// (SITE names it too).
const SMTP_PORT: u16 = 2525;

#[test]
fn the_package_installs_runs_upgrades_and_goes_away_under_a_real_systemd() {
    let started = Instant::now();
    let deb = built_package();
    let m = Machine::boot();
    let booted = started.elapsed();

    let step = |name: &str, at: &mut Instant| {
        println!("platform: {name} in {:.1?}", at.elapsed());
        *at = Instant::now();
    };
    let mut at = Instant::now();
    install_and_run_the_readme_commands(&m, &deb);
    step("install and the README's commands", &mut at);
    mail_arrives_for_a_problem_and_its_recovery(&m);
    step("Problem and OK mail, ping, journal", &mut at);
    reload_takes_a_good_config_and_refuses_a_broken_one(&m);
    step("reloads", &mut at);
    a_second_site_runs_beside_with_its_own_state(&m);
    step("picomon@site, status and silence", &mut at);
    stop_is_clean(&m);
    step("stop", &mut at);
    upgrade_keeps_the_edited_conffile_and_restarts_every_unit(&m, &deb);
    step("upgrade", &mut at);
    remove_stops_every_unit_and_purge_leaves_what_policy_expects(&m);
    step("remove and purge", &mut at);

    println!(
        "platform: ready in {booted:.1?}, whole walk {:.1?}",
        started.elapsed()
    );
}

fn install_and_run_the_readme_commands(m: &Machine, deb: &Path) {
    fs::copy(deb, m.path("/root/picomon.deb")).expect("copy the .deb into the container");
    m.ok("dpkg -i /root/picomon.deb");
    let status = m.ok("dpkg-query -W -f '${Status} ${Version}' picomon");
    assert!(status.starts_with("install ok installed"), "{status}");

    // Right after install, before the unit ever started.
    let said = m.ok("sudo -u picomon picomon check-config");
    assert!(said.starts_with("OK:"), "check-config said: {said}");
    let out = m.sh("sudo -u picomon picomon -1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "sudo -u picomon picomon -1: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["ping/localhost/ipv4", "disk", "load", "zombies"] {
        assert!(
            stdout.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.first() == Some(&check)
                    && words
                        .iter()
                        .any(|w| ["OK", "WARNING", "CRITICAL"].contains(w))
            }),
            "{check} did not run its plugin:\n{stdout}"
        );
    }
}

fn mail_arrives_for_a_problem_and_its_recovery(m: &Machine) {
    m.ok(&format!(
        "systemd-run --unit=smtp-sink --property=Type=exec \
         /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:{SMTP_PORT} \
         -c aiosmtpd.handlers.Mailbox /srv/mailbox"
    ));
    // 127.0.0.1:PORT listening, as /proc/net/tcp writes it.
    let listening = format!("0100007F:{SMTP_PORT:04X}");
    m.wait_for("the SMTP server on 127.0.0.1", MINUTE, |m| {
        // The container's network namespace: only its own /proc says.
        m.ok("cat /proc/net/tcp")
            .lines()
            .any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.get(1) == Some(&listening.as_str()) && fields.get(3) == Some(&"0A")
            })
            .then_some(())
    });
    fs::write(m.path("/etc/picomon.toml"), SITE).expect("write /etc/picomon.toml");
    m.ok("systemctl enable --now picomon");
    let problem = m.wait_for("the Problem mail", MINUTE, |m| {
        let mails = mailbox(m);
        (!mails.is_empty()).then_some(mails)
    });
    assert_eq!(
        problem.len(),
        1,
        "one mail for one failing check: {problem:?}"
    );
    assert!(
        problem[0].contains("Problem") && problem[0].contains("gate"),
        "{problem:?}"
    );

    fs::write(m.path("/srv/gate-open"), "").expect("open the gate");
    let mails = m.wait_for("the OK mail", MINUTE, |m| {
        let mails = mailbox(m);
        (mails.len() >= 2).then_some(mails)
    });
    assert_eq!(mails.len(), 2, "a Problem and an OK: {mails:?}");
    assert!(
        mails.iter().any(|s| s.contains("OK") && s.contains("gate")),
        "{mails:?}"
    );

    // Ping works under the unit's sandbox (CAP_NET_RAW and nothing else).
    let status = m.wait_for("ping OK in picomon status", MINUTE, |m| {
        let out = m.sh("picomon status");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .any(|l| l.trim_start().starts_with("OK") && l.contains("ping on this machine"))
            .then_some(text)
    });
    assert!(!status.contains("CRITICAL"), "{status}");

    // Where the operator reads the log: the Problem line at warning.
    m.wait_for("the PROBLEM line in journalctl -p warning", MINUTE, |m| {
        let journal = m.ok("journalctl -u picomon -p warning --no-pager -o cat");
        journal
            .lines()
            .any(|l| l.contains("gate: PROBLEM"))
            .then_some(())
    });
    // ... and each line at its own priority: the recovery is info.
    m.wait_for("the RECOVERED line in the journal", MINUTE, |m| {
        let journal = m.ok("journalctl -u picomon --no-pager -o cat");
        journal.contains("gate: RECOVERED").then_some(())
    });
    let warnings = m.ok("journalctl -u picomon -p warning --no-pager -o cat");
    assert!(
        !warnings.contains("gate: RECOVERED"),
        "the recovery was logged as a warning:\n{warnings}"
    );
}

fn reload_takes_a_good_config_and_refuses_a_broken_one(m: &Machine) {
    let pid = main_pid(m, "picomon");
    fs::create_dir_all(m.path("/etc/picomon.d")).expect("mkdir /etc/picomon.d");
    fs::write(m.path("/etc/picomon.d/50-extra.toml"), EXTRA).expect("write a fragment");
    m.ok("systemctl reload picomon");
    m.wait_for("the reloaded check in picomon status", MINUTE, |m| {
        let out = m.sh("picomon status");
        String::from_utf8_lossy(&out.stdout)
            .contains("extra")
            .then_some(())
    });

    fs::write(m.path("/etc/picomon.d/60-broken.toml"), BROKEN).expect("write a fragment");
    let out = m.sh("systemctl reload picomon");
    assert!(
        !out.status.success(),
        "reload accepted a broken configuration"
    );
    assert_eq!(m.ok("systemctl is-active picomon").trim(), "active");
    assert_eq!(main_pid(m, "picomon"), pid, "the daemon was restarted");
    // `picomon status` reads the configuration too (for its state_dir),
    // so ask once the broken fragment is gone: the daemon kept the old.
    fs::remove_file(m.path("/etc/picomon.d/60-broken.toml")).expect("remove the fragment");
    let status = m.sh("picomon status");
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("extra"),
        "the daemon lost its configuration: {}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}

fn a_second_site_runs_beside_with_its_own_state(m: &Machine) {
    // As the README says: a copy of /etc/picomon.toml, edited.
    m.ok(
        "install -d -m 0750 -g picomon /etc/picomon && cp /etc/picomon.toml /etc/picomon/site.toml",
    );
    let mut text = fs::read_to_string(m.path("/etc/picomon/site.toml")).expect("site.toml");
    text.push_str(SITE_ONLY);
    fs::write(m.path("/etc/picomon/site.toml"), text).expect("edit site.toml");
    m.ok("systemctl enable --now picomon@site");

    let site = m.wait_for("picomon status -c /etc/picomon/site.toml", MINUTE, |m| {
        let out = m.sh("picomon status -c /etc/picomon/site.toml");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code() == Some(0) && text.contains("site-only")).then_some(text)
    });
    assert!(
        !site.contains("extra"),
        "site's status shows the main instance:\n{site}"
    );
    let main = m.sh("picomon status");
    let main = String::from_utf8_lossy(&main.stdout);
    assert!(
        !main.contains("site-only"),
        "the main status shows the site's:\n{main}"
    );
    assert!(m.path("/var/lib/picomon/site/picomon.lock").exists());

    m.ok(
        "picomon silence add site-only --for 1h --reason 'platform test' -c /etc/picomon/site.toml",
    );
    let listed = m.ok("picomon silence list -c /etc/picomon/site.toml");
    assert!(listed.contains("site-only"), "{listed}");
    let listed = m.ok("picomon silence list -c /etc/picomon.toml");
    assert!(
        !listed.contains("site-only"),
        "silenced in the main instance:\n{listed}"
    );
    assert!(m.path("/var/lib/picomon/site/silences.json").is_file());
    assert!(!m.path("/var/lib/picomon/silences.json").exists());
    m.wait_for("the site's daemon to show the silence", MINUTE, |m| {
        let out = m.sh("picomon status -c /etc/picomon/site.toml");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.contains("site-only") && l.contains("silenced"))
            .then_some(())
    });

    // A copy that pins the main instance's state_dir (as the shipped file
    // once did): the unit's directory wins, and the journal says that
    // `-c` that file reaches the other one.
    let text = fs::read_to_string(m.path("/etc/picomon/site.toml")).expect("site.toml");
    fs::write(
        m.path("/etc/picomon/pinned.toml"),
        format!("state_dir = \"/var/lib/picomon\"\n{text}"),
    )
    .expect("write pinned.toml");
    m.ok("systemctl start picomon@pinned");
    m.wait_for("the warning of the overridden state_dir", MINUTE, |m| {
        let journal = m.ok("journalctl -u picomon@pinned -p warning --no-pager -o cat");
        journal
            .contains("state_dir /var/lib/picomon is overridden by PICOMON_STATE_DIR=/var/lib/picomon/pinned")
            .then_some(())
    });
    m.wait_for("picomon@pinned's lock in its own directory", MINUTE, |m| {
        m.path("/var/lib/picomon/pinned/picomon.lock")
            .exists()
            .then_some(())
    });
    m.ok("systemctl stop picomon@pinned");
}

fn stop_is_clean(m: &Machine) {
    let started = Instant::now();
    m.ok("systemctl stop picomon");
    println!(
        "platform: systemctl stop picomon took {:.2?}",
        started.elapsed()
    );
    assert_eq!(
        m.ok("systemctl show -p Result --value picomon").trim(),
        "success"
    );
    let out = m.sh("systemctl is-active picomon");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "inactive");
    m.ok("systemctl start picomon");
}

fn upgrade_keeps_the_edited_conffile_and_restarts_every_unit(m: &Machine, deb: &Path) {
    let unpacked = tempfile::tempdir().expect("temporary directory");
    let tree = unpacked.path().join("tree");
    run_host(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let text = fs::read_to_string(&control).expect("DEBIAN/control");
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .expect("a Version field")
        .to_string();
    let bumped = format!("{version}+platform1");
    fs::write(&control, text.replace(&version, &bumped)).expect("bump the version");
    run_host(
        Command::new("dpkg-deb")
            // Uncompressed: xz took most of a minute on two busy cores.
            .args(["--root-owner-group", "-Znone", "-b"])
            .arg(&tree)
            .arg(m.path("/root/picomon-upgrade.deb")),
    );

    let before = (main_pid(m, "picomon"), main_pid(m, "picomon@site"));
    m.ok("dpkg -i /root/picomon-upgrade.deb");
    let installed = m.ok("dpkg-query -W -f '${Version}' picomon");
    assert_eq!(installed, bumped);
    let conffile = fs::read_to_string(m.path("/etc/picomon.toml")).expect("/etc/picomon.toml");
    assert_eq!(conffile, SITE, "the upgrade changed the edited conffile");
    let leftovers = m.ok("ls /etc | grep '^picomon.toml.dpkg' || true");
    assert!(leftovers.trim().is_empty(), "{leftovers}");
    for (unit, pid) in [("picomon", before.0), ("picomon@site", before.1)] {
        assert_eq!(
            m.ok(&format!("systemctl is-active {unit}")).trim(),
            "active"
        );
        assert_ne!(
            main_pid(m, unit),
            pid,
            "{unit} was not restarted: it runs the old binaries"
        );
    }
    let mails = mailbox(m);
    assert_eq!(
        mails.len(),
        2,
        "no mail but the Problem and its OK: {mails:?}"
    );
}

fn remove_stops_every_unit_and_purge_leaves_what_policy_expects(m: &Machine) {
    m.ok("dpkg -r picomon");
    for unit in ["picomon", "picomon@site"] {
        let out = m.sh(&format!("systemctl is-active {unit}"));
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            state == "inactive" || state == "unknown",
            "{unit} is {state}"
        );
    }
    let running = m.ok("cat /proc/[0-9]*/comm 2>/dev/null | grep '^picomon' || true");
    assert!(
        running.trim().is_empty(),
        "still running after dpkg -r: {running}"
    );
    let wants = m.path("/etc/systemd/system/multi-user.target.wants");
    assert!(
        fs::symlink_metadata(wants.join("picomon@site.service")).is_err(),
        "dpkg -r left the link of picomon@site"
    );
    assert!(
        m.path("/etc/picomon.toml").is_file(),
        "remove took the conffile"
    );
    let status = m.ok("dpkg-query -W -f '${Status}' picomon");
    assert_eq!(status, "deinstall ok config-files");

    m.ok("dpkg -P picomon");
    let out = m.sh("dpkg-query -W -f '${Status}' picomon");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() || status.contains("not-installed"),
        "dpkg still knows picomon: {status}"
    );
    for gone in [
        "/etc/picomon.toml",
        "/var/lib/picomon",
        "/usr/bin/picomon",
        "/usr/lib/systemd/system/picomon.service",
        "/usr/lib/systemd/system/picomon@.service",
    ] {
        assert!(
            fs::symlink_metadata(m.path(gone)).is_err(),
            "{gone} is still there after dpkg -P"
        );
    }
    let links = m.ok("find /etc/systemd/system -name 'picomon*' -print 2>/dev/null || true");
    assert!(links.trim().is_empty(), "left after dpkg -P: {links}");
}

/// The subjects of the mails in the container's mailbox, oldest first.
fn mailbox(m: &Machine) -> Vec<String> {
    let Ok(entries) = fs::read_dir(m.path("/srv/mailbox/new")) else {
        return Vec::new();
    };
    let mut mails: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let text = fs::read_to_string(e.path()).ok()?;
            let when = e.metadata().ok()?.modified().ok()?;
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("(no subject)")
                .to_string();
            Some((when, subject))
        })
        .collect();
    mails.sort();
    mails.into_iter().map(|(_, subject)| subject).collect()
}

/// The unit's main PID, as its systemd sees it.
#[track_caller]
fn main_pid(m: &Machine, unit: &str) -> String {
    let pid = m.ok(&format!("systemctl show -p MainPID --value {unit}"));
    let pid = pid.trim().to_string();
    assert!(pid != "0" && !pid.is_empty(), "{unit} has no main process");
    pid
}
