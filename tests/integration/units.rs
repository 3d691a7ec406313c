//! The systemd units of `dist/systemd` as systemd itself reads them:
//! `systemd-analyze verify` on copies whose commands name the binaries just
//! built (the units name `/usr/bin`, where the Debian package puts them),
//! with the man pages they cite on `MANPATH`, so `Documentation=` is
//! checked too. verify exits 0 after an unknown key or a bad value (it
//! only warns), so its warnings count as failures here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::bin;

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
