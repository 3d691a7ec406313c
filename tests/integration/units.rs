//! The systemd units of `dist/systemd` as systemd itself reads them:
//! `systemd-analyze verify` on copies whose commands name the binaries just
//! built (the units name `/usr/bin`, where the Debian package puts them),
//! with the man pages they cite on `MANPATH`, so `Documentation=` is
//! checked too. verify exits 0 after an unknown key or a bad value (it
//! only warns), so its warnings count as failures here. And the units'
//! sandbox as far as it can be had without systemd as PID 1: their user
//! kind, capabilities and system call filter, under which ping and the
//! plugins must still work.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::bin;

#[track_caller]
fn dist_units() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/systemd");
    let mut units: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dist/systemd entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "service"))
        .collect();
    units.sort();
    units
}

/// The unit's text with `/usr/bin/picomon` and `/usr/bin/picomon-watchdog`
/// replaced by the binaries of this build.
#[track_caller]
fn with_built_binaries(text: &str) -> String {
    let watchdog = bin("picomon-watchdog");
    let picomon = bin("picomon");
    let rewritten = text
        .replace(
            "/usr/bin/picomon-watchdog ",
            &format!("{} ", watchdog.display()),
        )
        .replace("/usr/bin/picomon ", &format!("{} ", picomon.display()));
    assert!(
        !rewritten.contains("/usr/bin/"),
        "a command the test does not know how to point at the build:\n{rewritten}"
    );
    rewritten
}

/// A directory with the man pages as `man` finds them.
#[track_caller]
fn man_path(dir: &Path) -> PathBuf {
    let root = dir.join("man");
    for section in ["1", "5"] {
        let to = root.join(format!("man{section}"));
        fs::create_dir_all(&to).expect("man directory");
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        for entry in fs::read_dir(&from).expect("man/") {
            let path = entry.expect("man/ entry").path();
            if path.extension().is_some_and(|ext| ext == section) {
                fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy man page");
            }
        }
    }
    root
}

fn verify(unit: &Path, man: &Path) -> Output {
    Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .env("MANPATH", man)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/deps installs it)")
}

#[track_caller]
fn assert_clean(unit: &Path, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stderr.trim().is_empty() && stdout.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{stdout}{stderr}",
        unit.display(),
        out.status
    );
}

#[test]
fn systemd_accepts_every_unit_with_the_binaries_real_paths() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let man = man_path(dir.path());
    let units = dist_units();
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["picomon.service", "picomon@.service"]);

    for unit in &units {
        let text = fs::read_to_string(unit).expect("unit file");
        let name = unit.file_name().expect("name").to_string_lossy();
        let copy = dir.path().join(&*name);
        fs::write(&copy, with_built_binaries(&text)).expect("write unit");
        assert_clean(unit, &verify(&copy, &man));
        // A template is also checked as an instance, %i expanded.
        if name.ends_with("@.service") {
            let instance = dir.path().join(name.replace('@', "@site"));
            fs::write(&instance, with_built_binaries(&text)).expect("write instance");
            assert_clean(&instance, &verify(&instance, &man));
        }
    }
}

#[test]
fn template_instance_has_its_own_config_fragments_and_state() {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/systemd/picomon@.service"),
    )
    .expect("picomon@.service");
    for line in [
        "ExecStartPre=/usr/bin/picomon check-config -c /etc/picomon/%i.toml",
        "ExecStart=/usr/bin/picomon-watchdog -c /etc/picomon/%i.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=picomon/%i",
        "Environment=PICOMON_STATE_DIR=/var/lib/picomon/%i",
        "User=picomon",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "picomon@.service lacks `{line}`"
        );
    }
}

#[test]
fn verify_reports_a_misspelt_key_in_a_unit() {
    // The check above is only worth something if verify's warnings reach it.
    let dir = tempfile::tempdir().expect("temporary directory");
    let man = man_path(dir.path());
    let text = fs::read_to_string(&dist_units()[0]).expect("unit file");
    let broken = with_built_binaries(&text).replace("KillMode=", "KilMode=");
    let copy = dir.path().join("picomon.service");
    fs::write(&copy, broken).expect("write unit");
    let out = verify(&copy, &man);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("KilMode"),
        "systemd-analyze verify did not report the unknown key: {stderr}"
    );
}

/// The values of `key` in the [Service] section of a dist unit, in order.
#[track_caller]
fn service_values(unit: &str, key: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dist/systemd")
        .join(unit);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

/// Runs `picomon -1` on checks of this machine the way the units run it,
/// without systemd as PID 1: as an unprivileged user with no_new_privs,
/// the units' capability sets, and their SystemCallFilter= lines applied as
/// systemd applies them (tests/units/syscall_filter.py), plus `extra`
/// filter lines.
fn one_pass_in_the_units_sandbox(extra: &[&str]) -> Output {
    assert!(
        running_as_root(),
        "this test changes to an unprivileged user: run the suite as root, as scripts/test does"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let open = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    open(dir.path(), 0o755);
    // A copy of the binary: the checkout may be where the user cannot go.
    let picomon = dir.path().join("picomon");
    fs::copy(bin("picomon"), &picomon).expect("copy picomon");
    open(&picomon, 0o755);
    let config = dir.path().join("picomon.toml");
    fs::write(
        &config,
        r#"
[hosts.localhost]
ipv4 = "127.0.0.1"

[checks.ping]
type = "ping"
hosts = ["localhost"]

[checks.disk]
type = "command"
command = ["/usr/lib/nagios/plugins/check_disk", "-w", "1", "-c", "1", "-p", "/"]

[checks.zombies]
type = "command"
command = ["/usr/lib/nagios/plugins/check_procs", "-s", "Z", "-w", "100000", "-c", "100000"]

[checks.load]
type = "command"
command = ["/usr/lib/nagios/plugins/check_load", "-w", "10000,10000,10000", "-c", "10000,10000,10000"]
"#,
    )
    .expect("write config");
    open(&config, 0o644);

    let caps = |key: &str| {
        service_values("picomon.service", key)
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .map(|cap| format!("+{}", cap.trim_start_matches("CAP_").to_lowercase()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let bounding = caps("CapabilityBoundingSet");
    let ambient = caps("AmbientCapabilities");
    assert_eq!(
        ambient, "+net_raw",
        "the units grant more than the test models"
    );

    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--no-new-privs",
    ])
    .arg(format!("--bounding-set=-all,{bounding}"))
    .arg(format!("--inh-caps=-all,{ambient}"))
    .arg(format!("--ambient-caps={ambient}"))
    .arg("/usr/bin/python3")
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/units/syscall_filter.py"));
    for errno in service_values("picomon.service", "SystemCallErrorNumber") {
        cmd.args(["--errno", &errno]);
    }
    let filters = service_values("picomon.service", "SystemCallFilter");
    assert!(!filters.is_empty(), "the units filter no system calls");
    for line in filters
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
    {
        cmd.args(["--filter", line]);
    }
    cmd.arg("--").arg(&picomon).arg("-1").arg("-c").arg(&config);
    cmd.output()
        .expect("setpriv (util-linux) and python3-seccomp (scripts/deps installs it)")
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().take(3).eq(["Uid:", "0", "0"]))
        })
        .unwrap_or(false)
}

#[test]
fn ping_and_plugins_work_in_the_units_sandbox() {
    let out = one_pass_in_the_units_sandbox(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "picomon -1 with the units' user, capabilities and system call filter: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["ping/localhost/ipv4", "disk", "zombies", "load"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(check) && l.contains(" OK ")),
            "{check} is not OK in the sandbox:\n{stdout}"
        );
    }
}

#[test]
fn ping_fails_when_the_filter_also_denies_privileged_calls() {
    // Why nix/service.nix keeps @privileged: ping drops its capabilities
    // with capset and setuid. This also shows the filter really applies.
    let out = one_pass_in_the_units_sandbox(&["~@privileged"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("Operation not permitted"),
        "ping still worked without @privileged, or failed otherwise: {}\n{stdout}",
        out.status
    );
}
