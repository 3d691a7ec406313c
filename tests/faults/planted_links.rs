//! Whoever can write into `state_dir` must not make picomon write
//! anywhere else (issue 21): links planted in the names of its lock and
//! of the temporary files of its atomic writes used to be followed, as
//! root: the lock's target was emptied and given picomon's pid, a
//! temporary file's target overwritten and made 0600. And a `state_dir`
//! anyone can write is refused, like such a configuration file.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::campaign::LONG;
use crate::harness::{wait_for, Site};

const VICTIM: &str = "precious: not picomon's\n";

/// A site whose one check fails while `down` exists, state in `state/`
/// (made 0700 here, so that links can be planted before the start).
fn site() -> Site {
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 0.2
default_retry = 0
state_dir = "{state}"

[checks.web]
type = "command"
command = ["{plugin}"]
"#,
            state = site.path("state").display()
        ),
    );
    std::fs::create_dir(site.path("state")).expect("mkdir state");
    std::fs::set_permissions(site.path("state"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    site
}

/// A file outside `state_dir`, readable by all, and a link to it planted
/// as `state/NAME`.
fn plant(site: &Site, name: &str) -> PathBuf {
    let victim = site.path("victim");
    std::fs::write(&victim, VICTIM).expect("write the victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::os::unix::fs::symlink(&victim, site.path("state").join(name)).expect("plant the link");
    victim
}

/// The victim holds what it held, with the mode it had.
#[track_caller]
fn untouched(victim: &PathBuf, log: &str) {
    let text = std::fs::read_to_string(victim).expect("read the victim");
    assert_eq!(text, VICTIM, "written through the link:\n{log}");
    let mode = std::fs::metadata(victim)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "its mode changed through the link:\n{log}");
}

#[test]
fn a_lock_file_planted_as_a_link_does_not_empty_its_target() {
    let site = site();
    let victim = plant(&site, "picomon.lock");
    let mut daemon = site.daemon(&[]);
    let status = daemon.wait_exit(LONG);
    let log = daemon.stderr();
    assert!(
        !status.success(),
        "picomon started on a linked lock:\n{log}"
    );
    assert!(
        log.contains("picomon.lock") && log.contains("symbolic link"),
        "the log does not name the lock file as a link:\n{log}"
    );
    untouched(&victim, &log);
}

#[test]
fn a_state_temporary_file_planted_as_a_link_does_not_overwrite_its_target() {
    let site = site();
    let daemon = site.daemon(&[]);
    daemon.wait_log("picomon started", 1, LONG);
    // Planted while picomon runs: a start removes leftovers, the link with
    // them.
    let victim = plant(&site, ".state.json.tmp");
    site.down("FLAG CRITICAL - down");
    let state = site.path("state/state.json");
    wait_for("the outage saved in state.json", LONG, || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"failing\":true"))
    });
    untouched(&victim, &daemon.stderr());
}

#[test]
fn a_silences_temporary_file_planted_as_a_link_does_not_overwrite_its_target() {
    let site = site();
    let victim = plant(&site, ".silences.json.tmp");
    let out = site.run(&["silence", "add", "web*", "--for", "1h", "--reason", "links"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "silence add failed:\n{log}");
    untouched(&victim, &log);
    let listed = site.run(&["silence", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("web*"),
        "the silence was not kept: {listed}"
    );
}

#[test]
fn a_state_dir_anyone_can_write_is_refused_by_check_config_and_the_daemon() {
    let site = site();
    let state = site.path("state");
    // Made by another user, for all: sticky like /tmp, which does not help.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    for args in [&["check-config"][..], &[][..]] {
        let mut daemon = site.daemon(args);
        let status = daemon.wait_exit(LONG);
        let log = daemon.stderr();
        assert_eq!(status.code(), Some(78), "picomon {args:?}:\n{log}");
        assert!(
            log.contains("state_dir") && log.contains("writable by anyone"),
            "picomon {args:?} does not say state_dir is writable by anyone:\n{log}"
        );
    }
    assert!(
        !state.join("picomon.lock").exists(),
        "the daemon used the directory"
    );
}
