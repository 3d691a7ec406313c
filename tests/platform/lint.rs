//! The package's maintainer scripts and metadata, as built into the .deb:
//! every script parses as sh (a marker in a comment once put cargo-deb's
//! code inside it, and dpkg -i failed), and lintian reports no error and
//! no warning; an override only with its reason.

use std::path::Path;
use std::process::Command;

use crate::deb::built_package;
use crate::machine::{require_tools, run_host};

#[test]
fn every_maintainer_script_of_the_built_package_parses_as_sh() {
    let deb = built_package();
    let dir = tempfile::tempdir().expect("temporary directory");
    run_host(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(dir.path()));
    let mut scripts = 0;
    for name in ["preinst", "postinst", "prerm", "postrm"] {
        let script = dir.path().join(name);
        if !script.exists() {
            continue;
        }
        scripts += 1;
        let out = Command::new("sh")
            .arg("-n")
            .arg(&script)
            .output()
            .expect("run sh -n");
        assert!(
            out.status.success(),
            "{name} of the package does not parse: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&script).unwrap_or_default()
        );
        let text = std::fs::read_to_string(&script).expect("script text");
        assert!(
            !text.contains("#DEBHELPER#"),
            "{name} still has the marker:\n{text}"
        );
    }
    assert_eq!(scripts, 3, "postinst, prerm and postrm are expected");
    // cargo-deb's code is where it runs, not in a comment.
    let postinst = std::fs::read_to_string(dir.path().join("postinst")).expect("postinst");
    for command in ["systemd-sysusers", "systemd-tmpfiles --create"] {
        assert!(
            postinst
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "postinst does not run {command}:\n{postinst}"
        );
    }
}

#[test]
fn lintian_reports_no_error_and_no_warning_on_the_built_package() {
    require_tools(&["lintian"]);
    let deb = built_package();
    let out = Command::new("lintian")
        .arg("--no-tag-display-limit")
        .arg(&deb)
        .output()
        .expect("run lintian");
    let said = String::from_utf8_lossy(&out.stdout);
    let faults: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(
        faults.is_empty() && matches!(out.status.code(), Some(0 | 1)),
        "lintian {}: {}\n{said}{}",
        deb.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_lintian_override_says_why() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/debian/lintian-overrides");
    let text = std::fs::read_to_string(&path).expect("dist/debian/lintian-overrides");
    let mut reason = false;
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            reason = true;
        } else if line.trim().is_empty() {
            reason = false;
        } else {
            assert!(reason, "override without a comment saying why: {line}");
        }
    }
}
