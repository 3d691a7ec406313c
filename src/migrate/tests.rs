//! The translation on descriptions as the stand-in writes them.

use super::description::Description;
use super::translate::{retry, translate};

#[track_caller]
fn described(json: &str) -> Description {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad fixture: {e}"))
}

fn host(var: &str, v4: &str, v6: &str, name: &str) -> String {
    format!(
        r#"{{"var": "{var}", "ipv4": "{v4}", "ipv6": "{v6}", "given": ["ipv4", "ipv6"],
            "name": "{name}", "name_given": true, "line": 3}}"#
    )
}

fn instance(
    class: &str,
    kind: Option<&str>,
    host: Option<usize>,
    family: Option<u8>,
    extra: &str,
) -> String {
    let kind = kind.map_or("null".to_string(), |k| format!("\"{k}\""));
    let host = host.map_or("null".to_string(), |h| h.to_string());
    let family = family.map_or("null".to_string(), |f| f.to_string());
    format!(
        r#"{{"line": 7, "class": "{class}", "type": {kind}, "options": {{}}, "every": 1,
            "retry": 1, "error_every": 1, "timeout": 2, "target_name": "x", "host": {host},
            "family": {family}, "zone": null, "uses": [], "probe": null, "unprobed": null {extra}}}"#
    )
}

fn config(hosts: &[String], checks: &[String]) -> Description {
    described(&format!(
        r#"{{"file": "config.py", "default_from": "Picomon <picomon@here>",
            "settings": [{{"key": "base_tick", "value": 60, "line": 0, "known": true}},
                         {{"key": "emails.to", "value": ["ops@example.org"], "line": 2, "known": true}}],
            "hosts": [{}], "checks": [{}]}}"#,
        hosts.join(","),
        checks.join(",")
    ))
}

#[track_caller]
fn parsed(toml_text: &str) -> toml::Table {
    toml_text
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{toml_text}"))
}

#[test]
fn retry_is_one_less_since_picomon_py_mailed_at_the_retry_th_failure() {
    assert_eq!(retry(1), 0);
    assert_eq!(retry(0), 0);
    assert_eq!(retry(3), 2);
}

#[test]
fn both_families_of_a_class_on_the_same_hosts_make_one_check() {
    let d = config(
        &[
            host("web", "192.0.2.1", "2001:db8::1", "front"),
            host("mx", "192.0.2.2", "2001:db8::2", "mx"),
        ],
        &[
            instance("CheckPing4", Some("ping"), Some(0), Some(4), ""),
            instance("CheckPing4", Some("ping"), Some(1), Some(4), ""),
            instance("CheckPing6", Some("ping"), Some(0), Some(6), ""),
            instance("CheckPing6", Some("ping"), Some(1), Some(6), ""),
        ],
    );
    let t = translate(&d, "");
    let toml = parsed(&t.toml);
    let checks = toml["checks"].as_table().expect("checks");
    assert_eq!(checks.len(), 1, "{}", t.toml);
    let ping = &checks["ping"];
    assert_eq!(ping["hosts"].as_array().map(Vec::len), Some(2));
    assert_eq!(ping["ip"].as_array().map(Vec::len), Some(2));
    assert!(
        ping.get("retry").is_none(),
        "retry 1 is picomon's 0, the default"
    );
    assert_eq!(toml["default_retry"].as_integer(), Some(0));
    assert_eq!(toml["hosts"]["web"]["name"].as_str(), Some("front"));
    assert_eq!(toml["emails"]["to"][0].as_str(), Some("ops@example.org"));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn hosts_with_other_families_make_another_check() {
    let d = config(
        &[
            host("a", "192.0.2.1", "2001:db8::1", "a"),
            host("b", "192.0.2.2", "2001:db8::2", "b"),
        ],
        &[
            instance("CheckPing4", Some("ping"), Some(0), Some(4), ""),
            instance("CheckPing6", Some("ping"), Some(0), Some(6), ""),
            instance("CheckPing6", Some("ping"), Some(1), Some(6), ""),
        ],
    );
    let toml = parsed(&translate(&d, "").toml);
    let checks = toml["checks"].as_table().expect("checks");
    assert_eq!(checks["ping"]["ip"].as_array().map(Vec::len), Some(2));
    assert_eq!(checks["ping-2"]["hosts"][0].as_str(), Some("b"));
    assert_eq!(checks["ping-2"]["ip"][0].as_integer(), Some(6));
}

#[test]
fn a_subclass_running_one_command_is_a_command_check_with_addr() {
    let probe = r#", "probe": {"argv": ["/usr/lib/nagios/plugins/check_ssh", "-H", "{addr}"], "timeout": 5, "pattern": "OK"}"#;
    let mut c = instance("CheckSSH", None, Some(0), Some(4), "");
    c = c
        .replace(r#""probe": null, "#, "")
        .replace(" }", &format!("{probe}}}"));
    let d = config(&[host("web", "192.0.2.1", "2001:db8::1", "web")], &[c]);
    let t = translate(&d, "");
    let toml = parsed(&t.toml);
    let check = &toml["checks"]["CheckSSH"];
    assert_eq!(check["type"].as_str(), Some("command"));
    assert_eq!(check["command"][2].as_str(), Some("{addr}"));
    assert_eq!(check["timeout"].as_integer(), Some(5));
    assert_eq!(check["pattern"].as_str(), Some("OK"));
    assert!(toml["hosts"]["web"].get("name").is_none());
}

#[test]
fn what_cannot_be_translated_is_a_comment_naming_its_line_and_a_warning() {
    let mut c = instance("CheckDNSAut", None, None, None, "");
    c = c.replace(
        r#""unprobed": null"#,
        r#""unprobed": "its check() raised TypeError""#,
    );
    let d = config(&[], &[c]);
    let source = "a\nb\nc\nd\ne\nf\nconfig.checks.append(CheckDNSAut())\n";
    let t = translate(&d, source);
    assert!(
        t.toml
            .contains("# config.py line 7: config.checks.append(CheckDNSAut())"),
        "{}",
        t.toml
    );
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(
        t.warnings[0].starts_with("config.py:7: not translated: CheckDNSAut"),
        "{:?}",
        t.warnings
    );
    assert!(parsed(&t.toml).get("checks").is_none());
}

#[test]
fn https_keeps_taking_any_certificate_and_ignored_options_are_said() {
    let c = instance("CheckHTTPS4", Some("https"), Some(0), Some(4), "")
        .replace(
            r#""options": {}"#,
            r#""options": {"status": "302", "vhost": "www.example.org", "port": 8443}"#,
        )
        .replace(
            r#""uses": []"#,
            r#""uses": ["status", "vhost", "string", "url"]"#,
        );
    let d = config(&[host("web", "192.0.2.1", "2001:db8::1", "web")], &[c]);
    let t = translate(&d, "");
    let toml = parsed(&t.toml);
    let check = &toml["checks"]["https"];
    assert_eq!(check["verify"].as_bool(), Some(false));
    assert_eq!(check["status"].as_integer(), Some(302));
    assert_eq!(check["ip"][0].as_integer(), Some(4));
    assert!(check.get("port").is_none());
    assert!(
        t.warnings.iter().any(|w| w.contains("port = 8443")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn a_target_name_other_than_the_hosts_is_said_since_picomon_uses_the_hosts() {
    let probe = r#", "probe": {"argv": ["/bin/true", "{addr}"], "timeout": 2, "pattern": ""}"#;
    let c = instance("CheckMine", None, Some(0), Some(4), "")
        .replace(r#""probe": null, "#, "")
        .replace(" }", &format!("{probe}}}"));
    let d = config(&[host("web", "192.0.2.1", "2001:db8::1", "front")], &[c]);
    let t = translate(&d, "");
    assert!(
        t.warnings
            .iter()
            .any(|w| w
                .contains("target_name \"x\": picomon names the target after the host, \"front\"")),
        "{:?}",
        t.warnings
    );
    assert!(parsed(&t.toml)["checks"]["CheckMine"]
        .get("command")
        .is_some());
}
