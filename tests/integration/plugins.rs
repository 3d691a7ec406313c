//! Plugins that misbehave: hang, leave children behind, print too much or
//! garbage, or do not exist. None of it may hang or crash picomon.

use std::time::{Duration, Instant};

use crate::harness::{alive, dedent, read_pid, wait_for, Site};

fn json(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn command_check(name: &str, argv: &str, extra: &str) -> String {
    dedent(&format!(
        r#"
            [checks.{name}]
            type = "command"
            command = ["{argv}"]
            {extra}
        "#
    ))
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let site = Site::new("");
    let child_pid = site.path("child.pid");
    let plugin = site.plugin(
        "hang",
        &format!(
            "sleep 100 &\necho $! > {}\necho still working\nsleep 100",
            child_pid.display()
        ),
    );
    site.write("site.toml", &command_check("hang", &plugin, "timeout = 1"));
    let started = Instant::now();
    let out = site.run(&["-1", "--json"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "picomon waited {took:?}");
    let objs = json(&out);
    assert_eq!(objs[0]["state"], "CRITICAL");
    assert_eq!(objs[0]["exit_code"], serde_json::Value::Null);
    let output = objs[0]["output"].as_str().unwrap_or_default();
    assert!(output.starts_with("timed out after 1 s"), "{output}");
    assert!(
        output.contains("still working"),
        "partial output is kept: {output}"
    );
    let pid = read_pid(&child_pid);
    wait_for(
        "the background sleep to be killed",
        Duration::from_secs(5),
        || !alive(pid),
    );
}

#[test]
fn a_plugin_that_leaves_a_child_holding_its_output_does_not_block() {
    let site = Site::new("");
    let child_pid = site.path("child.pid");
    let plugin = site.plugin(
        "forker",
        &format!(
            "sleep 100 &\necho $! > {}\necho 'FORK OK'\nexit 0",
            child_pid.display()
        ),
    );
    site.write(
        "site.toml",
        &command_check("forker", &plugin, "timeout = 30"),
    );
    let started = Instant::now();
    let out = site.run(&["-1", "--json"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "picomon waited on the leftover child's pipe"
    );
    let objs = json(&out);
    assert_eq!(objs[0]["state"], "OK");
    assert_eq!(objs[0]["output"], "FORK OK");
    let pid = read_pid(&child_pid);
    wait_for(
        "the leftover child to be killed",
        Duration::from_secs(5),
        || !alive(pid),
    );
}

#[test]
fn huge_output_is_capped_and_binary_output_is_survived() {
    let site = Site::new("");
    let huge = site.plugin(
        "huge",
        "echo 'BIG OK'\nhead -c 20000000 /dev/zero | tr '\\0' 'x'\nexit 0",
    );
    let binary = site.plugin("binary", "head -c 100000 /dev/urandom\nexit 1");
    site.write(
        "site.toml",
        &format!(
            "{}{}",
            command_check("huge", &huge, ""),
            command_check("binary", &binary, "")
        ),
    );
    let out = site.run(&["-1", "--json"]);
    let objs = json(&out);
    let binary = &objs[0];
    assert_eq!(binary["state"], "WARNING");
    let huge = &objs[1];
    assert_eq!(huge["state"], "OK");
    let output = huge["output"].as_str().unwrap_or_default();
    assert!(
        output.starts_with("BIG OK"),
        "{}",
        &output[..40.min(output.len())]
    );
    assert!(
        output.len() < 70 * 1024,
        "output not capped: {} bytes",
        output.len()
    );
    assert!(output.contains("more bytes of output dropped"));
}

#[test]
fn a_missing_plugin_is_unknown_not_a_crash() {
    let site = Site::new(&command_check("gone", "/nonexistent/check_gone", ""));
    let out = site.run(&["-1"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("UNKNOWN"), "{text}");
    assert!(
        text.contains("check not available: /nonexistent/check_gone"),
        "{text}"
    );
}

#[test]
fn exit_codes_map_to_states_and_a_pattern_must_match() {
    let site = Site::new("");
    let mut config = String::new();
    for code in [0, 1, 2, 3, 42] {
        let p = site.plugin(
            &format!("exit{code}"),
            &format!("echo 'exit {code} | perf=1'\nexit {code}"),
        );
        config.push_str(&command_check(&format!("exit{code}"), &p, ""));
    }
    let p = site.plugin("pattern", "echo 'status: SERVFAIL'");
    config.push_str(&command_check(
        "pattern",
        &p,
        "pattern = \"status: NOERROR\"",
    ));
    site.write("site.toml", &config);
    let objs = json(&site.run(&["-1", "--json"]));
    let states: Vec<&str> = objs
        .iter()
        .map(|o| o["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        states,
        ["OK", "WARNING", "CRITICAL", "UNKNOWN", "UNKNOWN", "CRITICAL"]
    );
    assert_eq!(objs[0]["output"], "exit 0");
    assert_eq!(objs[0]["perfdata"], "perf=1");
}

#[test]
fn checks_run_in_parallel() {
    let site = Site::new("");
    let p = site.plugin("slow", "sleep 1\necho SLOW OK");
    let config: String = (0..20)
        .map(|n| command_check(&format!("slow{n}"), &p, ""))
        .collect();
    site.write("site.toml", &format!("max_parallel = 20\n{config}"));
    let started = Instant::now();
    let out = site.run(&["-1"]);
    assert_eq!(out.status.code(), Some(0));
    // Run one after another they would take 20 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_failed_plugin_shows_both_its_stdout_and_its_stderr() {
    let site = Site::new("");
    let p = site.plugin(
        "both",
        "echo 'DB CRITICAL - cannot connect'\necho 'psql: connection refused' >&2\nexit 2",
    );
    site.write("site.toml", &command_check("both", &p, ""));
    let objs = json(&site.run(&["-1", "--json"]));
    assert_eq!(objs[0]["state"], "CRITICAL");
    assert_eq!(
        objs[0]["output"],
        "DB CRITICAL - cannot connect\npsql: connection refused"
    );
}

#[test]
fn a_timed_out_plugin_shows_what_it_printed_before_it_was_killed() {
    let site = Site::new("");
    let p = site.plugin(
        "slow",
        "echo 'connecting to 192.0.2.1'\necho 'still waiting' >&2\nexec sleep 30",
    );
    site.write("site.toml", &command_check("slow", &p, "timeout = 1"));
    let objs = json(&site.run(&["-1", "--json"]));
    assert_eq!(objs[0]["state"], "CRITICAL");
    assert_eq!(
        objs[0]["output"],
        "timed out after 1 s\nconnecting to 192.0.2.1\nstill waiting"
    );
}
