//! The Debian package as `scripts/package` builds it (`scripts/test` builds
//! it before the tests): unpacked with `dpkg-deb -x` into a temporary
//! directory. Its files are where Debian looks for them, its control data
//! says what it needs, and its own `picomon` validates its own
//! `/etc/picomon.toml` and runs every check once against this machine's
//! real plugins. Installing it, its maintainer scripts and lintian are
//! the platform test's (tests/platform/): on a booted Debian, not here.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

#[path = "../platform/deb.rs"]
mod deb;
use deb::built_package;

#[track_caller]
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn field(deb: &Path, name: &str) -> String {
    let out = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn package_holds_binaries_units_docs_and_a_conffile() {
    let deb = built_package();
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("root");
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));

    for file in [
        "usr/bin/picomon",
        "usr/bin/picomon-watchdog",
        "etc/picomon.toml",
        "usr/lib/sysusers.d/picomon.conf",
        "usr/lib/tmpfiles.d/picomon.conf",
        "usr/lib/systemd/system/picomon.service",
        "usr/lib/systemd/system/picomon@.service",
        "usr/share/bash-completion/completions/picomon",
        "usr/share/bash-completion/completions/picomon-watchdog",
        "usr/share/zsh/vendor-completions/_picomon",
        "usr/share/fish/vendor_completions.d/picomon.fish",
        "usr/share/doc/picomon/copyright",
    ] {
        assert!(root.join(file).is_file(), "the package has no /{file}");
    }
    // Every man page of man/, a new subcommand's included.
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages = 0;
    for entry in fs::read_dir(&man).expect("man/").filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(section) = name.rsplit('.').next().filter(|s| ["1", "5"].contains(s)) else {
            continue;
        };
        pages += 1;
        let packaged = root.join(format!("usr/share/man/man{section}/{name}.gz"));
        assert!(packaged.is_file(), "man/{name} is not in the package");
    }
    assert!(pages >= 6, "only {pages} man pages in man/");

    // The units are dist/systemd's, unchanged.
    for unit in ["picomon.service", "picomon@.service"] {
        let shipped =
            fs::read(root.join("usr/lib/systemd/system").join(unit)).expect("unit in package");
        let source = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("dist/systemd")
                .join(unit),
        )
        .expect("unit in dist/systemd");
        assert!(
            shipped == source,
            "{unit} in the package differs from dist/systemd"
        );
    }

    let conffiles = fs::read_to_string(control.join("conffiles")).expect("conffiles");
    assert!(
        conffiles.lines().any(|l| l == "/etc/picomon.toml"),
        "/etc/picomon.toml is not a conffile: {conffiles}"
    );
    let sysusers =
        fs::read_to_string(root.join("usr/lib/sysusers.d/picomon.conf")).expect("sysusers");
    assert!(
        sysusers.lines().any(|l| l.starts_with("u picomon ")),
        "no picomon system user in sysusers.d: {sysusers}"
    );
    let tmpfiles =
        fs::read_to_string(root.join("usr/lib/tmpfiles.d/picomon.conf")).expect("tmpfiles.d");
    assert!(
        tmpfiles
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["d", "/var/lib/picomon", "0755", "picomon", "picomon", "-"]),
        "no /var/lib/picomon in tmpfiles.d: {tmpfiles}"
    );
    assert_eq!(
        field(&deb, "Recommends"),
        "monitoring-plugins-basic, iputils-ping, dnsutils"
    );
    assert!(field(&deb, "Depends").contains("systemd"));
    // The binaries' relocations are packed (.cargo/config.toml), which
    // only glibc 2.36's loader reads; dpkg-shlibdeps alone says 2.34.
    let binary = fs::read(root.join("usr/bin/picomon")).expect("picomon in the package");
    assert!(
        binary.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR"),
        "picomon was linked without packed relocations"
    );
    assert!(
        field(&deb, "Depends").contains("libc6 (>= 2.36)"),
        "{}",
        field(&deb, "Depends")
    );
}

#[test]
fn packaged_picomon_checks_its_own_config_and_runs_it_once() {
    let deb = built_package();
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let picomon = root.join("usr/bin/picomon");
    let config = root.join("etc/picomon.toml");

    let out = run(Command::new(&picomon)
        .arg("check-config")
        .arg("-c")
        .arg(&config));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("OK:"), "check-config said: {said}");

    // The shipped file pins no state_dir: it follows where the file is
    // (/var/lib/picomon at /etc/picomon.toml; none where it was unpacked).
    let text = fs::read_to_string(&config).expect("etc/picomon.toml");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("state_dir")),
        "the shipped configuration pins state_dir:\n{text}"
    );
    let out = Command::new(&picomon)
        .arg("-1")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run the packaged picomon");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 0 all OK, 1 a check failed: a busy machine may well have a load
    // WARNING; what must hold is that every check ran a real plugin.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "picomon -1: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["ping/localhost/ipv4", "disk", "load", "zombies"] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(check))
            .unwrap_or_else(|| panic!("no result for {check}:\n{stdout}"));
        assert!(
            ["OK", "WARNING", "CRITICAL"]
                .iter()
                .any(|state| line.split_whitespace().any(|w| w == *state)),
            "{check} did not run its plugin: {line}\n{stdout}"
        );
    }
}
