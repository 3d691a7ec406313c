//! Validation tests: every kind of bad input must be refused with the key
//! and the file named; fragments must merge as documented.

use std::path::{Path, PathBuf};

use super::emails::split_host_port;
use super::raw::{RawCheck, RawHost};
use super::*;
use crate::host::address_of;

// The fixtures' helper of the integration tests, so that fixtures read the
// same way in both (`pub` there, for the test binaries that share it).
#[path = "../../tests/integration/dedent.rs"]
#[allow(unreachable_pub)]
mod dedent;
use dedent::dedent;

// The helper itself, tested once here rather than in every test binary
// that shares it.
#[test]
fn an_indented_raw_string_is_the_text_it_shows() {
    let text = dedent(
        r#"
        base_tick = 1

        [checks.a]
        type = "command"
    "#,
    );
    assert_eq!(text, "base_tick = 1\n\n[checks.a]\ntype = \"command\"\n");
}

#[test]
fn lines_a_format_argument_brought_keep_their_place() {
    let extra = "a = 1\nb = 2";
    let text = dedent(&format!(
        r#"
        {extra}
        c = 3"#
    ));
    assert_eq!(text, "a = 1\nb = 2\nc = 3");
}

#[test]
fn text_without_a_leading_line_break_is_kept() {
    assert_eq!(dedent("  a = 1\n"), "  a = 1\n");
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(main: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("site.toml"), main).expect("write main");
        Site { dir }
    }

    fn fragment(&self, name: &str, text: &str) -> &Site {
        let d = self.dir.path().join("site.d");
        std::fs::create_dir_all(&d).expect("mkdir site.d");
        std::fs::write(d.join(name), text).expect("write fragment");
        self
    }

    fn main(&self) -> PathBuf {
        self.dir.path().join("site.toml")
    }

    fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.main())
    }

    /// The error, as one string, asserting that loading failed.
    #[track_caller]
    fn error(&self) -> String {
        match self.load() {
            Ok(_) => panic!("configuration was accepted"),
            Err(e) => e.to_string(),
        }
    }
}

const HOSTS: &str = r#"
[hosts.web]
ipv4 = "192.0.2.10"
ipv6 = "2001:db8::10"
name = "front web server"

[hosts.old]
ipv4 = "192.0.2.20"
"#;

/// The hosts, then `rest` as the test writes it (an indented raw string:
/// see `dedent`).
fn with_hosts(rest: &str) -> String {
    format!("{HOSTS}\n{}", dedent(rest))
}

#[track_caller]
fn assert_names(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "error does not mention {p:?}:\n{err}");
    }
}

#[test]
fn a_typo_in_a_check_key_is_an_error_naming_key_and_file() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.homepage]
            type = "http"
            hosts = ["web"]
            evry = 5
        "#,
    ));
    assert_names(&site.error(), &["evry", "checks.homepage", "site.toml"]);
}

#[test]
fn a_typo_at_top_level_is_an_error() {
    let site = Site::new("base_tik = 30\n");
    assert_names(&site.error(), &["base_tik", "site.toml"]);
}

#[test]
fn a_wrong_type_names_the_key() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.homepage]
            type = "http"
            hosts = ["web"]
            every = "5"
        "#,
    ));
    assert_names(&site.error(), &["checks.homepage.every", "site.toml"]);
}

#[test]
fn broken_toml_names_the_file() {
    let site = Site::new("base_tick = 60\n");
    site.fragment(
        "10-broken.toml",
        &dedent(
            r#"
                [checks.x
                type = "ping"
            "#,
        ),
    );
    assert_names(&site.error(), &["10-broken.toml"]);
}

#[test]
fn an_unknown_check_type_is_an_error() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.x]
            type = "htp"
            hosts = ["web"]
        "#,
    ));
    assert_names(&site.error(), &["htp", "checks.x.type"]);
}

#[test]
fn an_unknown_host_names_the_fragment_that_used_it() {
    let site = Site::new(HOSTS);
    site.fragment(
        "20-web.toml",
        &dedent(
            r#"
                [checks.x]
                type = "ping"
                hosts = ["webb"]
            "#,
        ),
    );
    assert_names(&site.error(), &["checks.x.hosts", "webb", "20-web.toml"]);
}

#[test]
fn ipv6_on_a_host_without_ipv6_is_an_error() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.x]
            type = "ping"
            hosts = ["old"]
            ip = [6]
        "#,
    ));
    assert_names(&site.error(), &["checks.x.ip", "old", "IPv6"]);
}

#[test]
fn an_empty_command_is_an_error() {
    let site = Site::new(&dedent(
        r#"
            [checks.x]
            type = "command"
            command = []
        "#,
    ));
    assert_names(&site.error(), &["checks.x.command", "empty"]);
    let site = Site::new(&dedent(
        r#"
            [checks.x]
            type = "command"
        "#,
    ));
    assert_names(&site.error(), &["checks.x", "command"]);
}

#[test]
fn a_zero_or_negative_tick_is_an_error() {
    for tick in ["0", "-5", "-0.5"] {
        let site = Site::new(&format!("base_tick = {tick}\n"));
        assert_names(&site.error(), &["base_tick", "site.toml"]);
    }
}

#[test]
fn a_missing_main_file_is_an_error_naming_it() {
    let err = Config::load(Path::new("/nonexistent/picomon.toml"))
        .expect_err("missing file accepted")
        .to_string();
    assert_names(&err, &["/nonexistent/picomon.toml"]);
}

#[test]
fn an_option_of_another_type_is_an_error() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.x]
            type = "ping"
            hosts = ["web"]
            vhost = "a"
        "#,
    ));
    assert_names(&site.error(), &["checks.x.vhost", "ping"]);
}

#[test]
fn bad_numbers_and_addresses_are_errors() {
    let site = Site::new(&dedent(
        r#"
            [hosts.h]
            ipv4 = "::1"
            [checks.x]
            type = "http"
            hosts = ["h"]
            status = 42
            every = 0
            retry = -1
        "#,
    ));
    assert_names(
        &site.error(),
        &[
            "hosts.h.ipv4",
            "checks.x.status",
            "checks.x.every",
            "checks.x.retry",
        ],
    );
    let site = Site::new(&dedent(
        r#"
            [checks.x]
            type = "command"
            command = ["a"]
            pattern = "("
        "#,
    ));
    assert_names(&site.error(), &["checks.x.pattern"]);
}

#[test]
fn addr_in_a_command_without_hosts_is_an_error() {
    let site = Site::new(&dedent(
        r#"
            [checks.x]
            type = "command"
            command = ["probe", "{addr}"]
        "#,
    ));
    assert_names(&site.error(), &["checks.x.command", "{addr}"]);
}

#[test]
fn fragments_merge_in_lexical_order_and_switch_checks_off() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.homepage]
            type = "http"
            hosts = ["web"]
            every = 5

            [checks.ping]
            type = "ping"
            hosts = ["web", "old"]
        "#,
    ));
    site.fragment(
        "10-a.toml",
        &dedent(
            r#"
                [checks.homepage]
                every = 10
            "#,
        ),
    )
    .fragment(
        "20-b.toml",
        &dedent(
            r#"
                [checks.homepage]
                every = 20
                [checks.ping]
                enabled = false
            "#,
        ),
    )
    .fragment("ignored.txt", "this is not toml");
    let config = site.load().expect("valid");
    assert_eq!(config.files.len(), 3);
    assert!(config.files[1].ends_with("site.d/10-a.toml"));
    assert_eq!(config.disabled, ["ping"]);
    let ids: Vec<&str> = config.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["homepage/web/ipv4", "homepage/web/ipv6"]);
    assert!(config
        .instances
        .iter()
        .all(|i| i.every == 20 && i.error_every == 20));
    assert_eq!(config.instances[0].dest, "front web server (IPv4)");
    assert!(config
        .summary()
        .starts_with("OK: 1 checks (2 instances) on 2 hosts, 1 disabled"));
}

#[test]
fn a_single_family_dest_has_no_family_label() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.p]
            type = "ping"
            hosts = ["web", "old"]
            ip = [4]
        "#,
    ));
    let config = site.load().expect("valid");
    let dests: Vec<&str> = config.instances.iter().map(|i| i.dest.as_str()).collect();
    // Sorted by id: p/old/ipv4, then p/web/ipv4.
    assert_eq!(dests, ["old", "front web server"]);
}

#[test]
fn the_daemon_keeps_no_copy_of_the_configuration_as_read() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.c]
            type = "command"
            command = ["/bin/true"]
        "#,
    ));
    let mut config = site.load().expect("valid");
    assert!(config.dump().is_ok());
    config.forget_source();
    assert!(config.raw.is_none());
    let err = config.dump().expect_err("nothing left to dump");
    assert!(err.to_string().contains("not kept"), "{err}");
    assert_eq!(config.instances.len(), 1);
}

#[test]
fn dump_is_accepted_again_and_hides_the_password() {
    let site = Site::new(&with_hosts(
        r#"
            [emails]
            smtp_user = "u"
            smtp_password = "s3cret"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org", "example.net"]
            [checks.c]
            type = "command"
            command = ["/bin/true"]
            error_every = 3
        "#,
    ));
    let config = site.load().expect("valid");
    let dumped = config.dump().expect("dump");
    assert!(!dumped.contains("s3cret"));
    let again = Site::new(&dumped);
    let reloaded = again.load().expect("dump is valid");
    let ids = |c: &Config| {
        c.instances
            .iter()
            .map(|i| (i.id.clone(), i.argv.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&config), ids(&reloaded));
    assert_eq!(ids(&config)[1].0, "z/example.net");
}

#[test]
fn address_of_a_mailbox() {
    assert_eq!(
        address_of("Picomon <picomon@example.org>"),
        "picomon@example.org"
    );
    assert_eq!(address_of("ops@example.org"), "ops@example.org");
}

#[test]
fn smtp_host_forms() {
    assert_eq!(split_host_port("mx"), Some(("mx".into(), None)));
    assert_eq!(split_host_port("mx:2525"), Some(("mx".into(), Some(2525))));
    assert_eq!(split_host_port("[::1]:25"), Some(("::1".into(), Some(25))));
    assert_eq!(split_host_port("mx:0"), None);
    assert_eq!(split_host_port("mx:smtp"), None);
    assert_eq!(split_host_port(""), None);
}

#[test]
fn bad_email_settings_name_their_keys() {
    let site = Site::new(&dedent(
        r#"
            [emails]
            to = ["not an address"]
            smtp_host = "mx:99999"
            smtp_user = "u"
            smtp_password_file = "/nonexistent/pw"
            subject_tpl = "a\nb"
            [emails.report]
            every = -1
        "#,
    ));
    assert_names(
        &site.error(),
        &[
            "emails.to",
            "emails.smtp_host",
            "emails.smtp_password_file",
            "/nonexistent/pw",
            "emails.subject_tpl",
            "emails.report.every",
        ],
    );
    let site = Site::new(&dedent(
        r#"
            [emails]
            smtp_user = "u"
        "#,
    ));
    assert_names(&site.error(), &["emails.smtp_user"]);
}

#[test]
fn the_password_file_is_read_and_the_port_follows_security() {
    let site = Site::new("");
    site.fragment("pw", "s3cret\n");
    let pw = site.dir.path().join("site.d/pw");
    std::fs::write(
        site.main(),
        dedent(&format!(
            r#"
                [emails]
                smtp_host = "mx"
                smtp_security = "tls"
                smtp_user = "u"
                smtp_password_file = "{}"
            "#,
            pw.display()
        )),
    )
    .expect("write");
    let config = site.load().expect("valid");
    assert_eq!(config.emails.smtp_password.as_deref(), Some("s3cret"));
    assert_eq!(config.emails.smtp_port, 465);
    assert!(!format!("{:?}", config.emails).contains("s3cret"));
}

/// Every key a user can write, from the serde types themselves.
fn every_key() -> Vec<String> {
    let mut raw = RawConfig {
        default_error_every: Some(1),
        state_dir: Some("/s".into()),
        ..RawConfig::default()
    };
    raw.emails.from = Some("a@b".into());
    raw.emails.smtp_user = Some("u".into());
    raw.emails.smtp_password = Some("p".into());
    raw.emails.smtp_password_file = Some("/p".into());
    raw.emails.smtp_ca_file = Some("/c".into());
    raw.hosts.insert(
        "h".into(),
        RawHost {
            ipv4: Some("192.0.2.1".into()),
            ipv6: Some("::1".into()),
            name: Some("n".into()),
        },
    );
    let check: RawCheck = toml::from_str(&dedent(
        r#"
            type = "smtp"
            hosts = []
            ip = []
            every = 1
            retry = 1
            error_every = 1
            timeout = 1
            enabled = true
            pattern = ""
            status = 200
            vhost = ""
            string = ""
            url = ""
            from_addr = ""
            response = ""
            command = ""
            query = ""
            zones = []
            ip_version = 4
            port = 1
            verify = true
            ca_file = "/c"
            certificate_days = [1, 0]
            tls_auth = "/a"
            key_direction = 1
            tls_crypt = "/t"
            env = { A = "b" }
            depends = []
            flap_switches = 1
            flap_window = 2
        "#,
    ))
    .expect("a check with every key");
    raw.checks.insert("c".into(), Box::new(check));
    let notify: super::raw::RawNotify = toml::from_str(&dedent(
        r#"
            type = "command"
            command = []
            timeout = 1
            retry_every = 1
            urls = []
            labels = { a = "b" }
            resend_every = 1
            username = "u"
            password_file = "/p"
            bearer_token_file = "/t"
            ca_file = "/c"
        "#,
    ))
    .expect("a notifier with every key");
    raw.notify.insert("n".into(), notify);
    let value = toml::Value::try_from(&raw).expect("to toml");
    let mut keys = Vec::new();
    fn walk(v: &toml::Value, user_table: bool, keys: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                // Under [hosts] and [checks] the keys are the user's names;
                // so are those of a check's `env` and a notifier's `labels`,
                // each itself a key.
                if k == "env" || k == "labels" {
                    keys.push(k.clone());
                } else if !user_table && v.is_table() {
                    walk(v, k == "hosts" || k == "checks" || k == "notify", keys);
                } else if user_table {
                    walk(v, false, keys);
                } else {
                    keys.push(k.clone());
                }
            }
        }
    }
    walk(&value, false, &mut keys);
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn the_man_page_documents_every_key() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/picomon.toml.5"))
        .expect("man/picomon.toml.5");
    let keys = every_key();
    assert!(keys.len() > 40, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            !page.contains(&format!("\n.B {k}\n")) && !page.contains(&format!("\n.BR {k} "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys not documented in man/picomon.toml.5: {missing:?}"
    );
}

#[test]
fn without_secrets_a_missing_password_file_is_fine() {
    let site = Site::new(&dedent(
        r#"
            [emails]
            smtp_user = "u"
            smtp_password_file = "/run/secrets/none"
            smtp_ca_file = "/none.pem"
        "#,
    ));
    assert_names(
        &site.error(),
        &["emails.smtp_password_file", "emails.smtp_ca_file"],
    );
    let config = Config::load_with(&site.main(), false).expect("valid without secrets");
    assert_eq!(config.emails.smtp_password, None);
}

#[test]
fn bad_defaults_are_errors_of_their_own_key() {
    let site = Site::new(&dedent(
        r#"
            default_every = 0
            default_retry = -1
            default_timeout = -2
            default_error_every = 0
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    let err = site.error();
    assert_names(
        &err,
        &[
            "default_every",
            "default_retry",
            "default_timeout",
            "default_error_every",
        ],
    );
    assert!(
        !err.contains("checks.c"),
        "a default is not the check's fault:\n{err}"
    );
}

#[test]
fn every_bound_is_explicit_and_names_its_key() {
    let cases = [
        ("max_parallel = 100000\n", "max_parallel", "1 to 1024"),
        ("max_parallel = 4294967295\n", "max_parallel", "1 to 1024"),
        ("base_tick = 1e-7\n", "base_tick", "0.01 to 86400"),
        ("base_tick = 86401\n", "base_tick", "0.01 to 86400"),
        ("default_timeout = 0.001\n", "default_timeout", "0.01"),
        (
            &dedent(
                r#"
                    [emails]
                    smtp_retry_timeout = 1e-7
                "#,
            ),
            "emails.smtp_retry_timeout",
            "0.01",
        ),
        (
            &dedent(
                r#"
                    [emails]
                    smtp_keepalive_timeout = 1e9
                "#,
            ),
            "emails.smtp_keepalive_timeout",
            "86400",
        ),
        (
            &dedent(
                r#"
                    [emails.report]
                    every = 1e-3
                "#,
            ),
            "emails.report.every",
            "0.01",
        ),
        (
            &dedent(
                r#"
                    [checks.c]
                    type = "command"
                    command = ["true"]
                    timeout = 1e-9
                "#,
            ),
            "checks.c.timeout",
            "0.01",
        ),
    ];
    for (text, key, bound) in cases {
        let site = Site::new(text);
        assert_names(&site.error(), &["site.toml", key, bound]);
    }
    let site = Site::new(&dedent(
        r#"
            max_parallel = 1024
            base_tick = 0.01
            [emails.report]
            every = 604800
        "#,
    ));
    site.load().expect("the bounds themselves are accepted");
}

#[test]
fn a_state_dir_that_cannot_hold_state_is_refused() {
    let site = Site::new("");
    let file = site.dir.path().join("afile");
    std::fs::write(&file, "").expect("write");
    let long = format!("/{}", "a".repeat(100_000));
    let cases = [
        ("\"\"".to_string(), "must not be empty"),
        ("\"var/lib/picomon\"".to_string(), "absolute"),
        ("\"/a\\u0000b\"".to_string(), "NUL"),
        (format!("{:?}", long), "too long"),
        (format!("{:?}", file), "not a directory"),
        (format!("{:?}", file.join("sub")), "not a directory"),
        ("\"/proc/self\"".to_string(), "proc"),
    ];
    for (value, why) in cases {
        let site = Site::new(&format!("state_dir = {value}\n"));
        assert_names(&site.error(), &["site.toml", "state_dir", why]);
    }
    // A directory still to be created is fine, and where a configuration
    // is only built, only the text of the path is checked.
    let fresh = site.dir.path().join("state/deeper");
    let site = Site::new(&format!("state_dir = {fresh:?}\n"));
    site.load().expect("a creatable state_dir");
    let site = Site::new(&format!("state_dir = {:?}\n", file));
    Config::load_with(&site.main(), false).expect("not looked at where it is built");
}

/// A well-formed OpenVPN static key file in `site`, and its path.
fn static_key(site: &Site, name: &str) -> PathBuf {
    let line = "0123456789abcdef".repeat(2);
    let body: String = (0..16).map(|_| format!("{line}\n")).collect();
    let path = site.dir.path().join(name);
    std::fs::write(
        &path,
        format!(
            "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n{body}-----END OpenVPN Static key V1-----\n"
        ),
    )
    .expect("write key");
    path
}

/// The argv of the only instance of a valid configuration, as strings.
#[track_caller]
fn only_argv(site: &Site) -> Vec<String> {
    let config = site.load().expect("valid");
    assert_eq!(config.instances.len(), 1, "{:?}", config.instances);
    config.instances[0]
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// An https check on `old`, with `extra` as the test writes it.
fn https(extra: &str) -> String {
    let extra = dedent(extra);
    with_hosts(&format!(
        r#"
            [checks.x]
            type = "https"
            hosts = ["old"]
            {extra}"#
    ))
}

#[test]
fn certificate_days_must_be_warn_then_crit_within_bounds() {
    for days in [
        "[30]",
        "[30, 7, 1]",
        "[]",
        "[7, 30]",
        "[30, -1]",
        "[-1, -2]",
        "[36501, 7]",
    ] {
        let site = Site::new(&https(&format!("certificate_days = {days}\n")));
        assert_names(
            &site.error(),
            &[
                "site.toml",
                "checks.x.certificate_days",
                "WARN >= CRIT >= 0",
            ],
        );
    }
    let site = Site::new(&https("certificate_days = 7\n"));
    assert_names(&site.error(), &["checks.x.certificate_days"]);
    for (days, option) in [
        ("[30, 7]", "30,7"),
        ("[7, 7]", "7,7"),
        ("[0, 0]", "0,0"),
        ("[36500, 0]", "36500,0"),
    ] {
        let argv = only_argv(&Site::new(&https(&format!("certificate_days = {days}\n"))));
        let option = format!("--certificate-days={option}");
        assert!(argv.contains(&option), "{argv:?}");
    }
    let argv = only_argv(&Site::new(&https("")));
    assert!(
        !argv.iter().any(|a| a.starts_with("--certificate-days")),
        "{argv:?}"
    );
}

#[test]
fn a_missing_ca_file_is_a_config_error_naming_the_key() {
    let site = Site::new(&https("ca_file = \"/nonexistent/ca.pem\"\n"));
    let err = site.load().expect_err("a missing ca_file accepted");
    assert_names(
        &err.to_string(),
        &["site.toml", "checks.x.ca_file", "/nonexistent/ca.pem"],
    );
    // (Exit 78: tests/integration/checks_https.rs.)

    // A directory is no CA file either.
    let site = Site::new("");
    let dir = site.dir.path().display().to_string();
    let site = Site::new(&https(&format!("ca_file = \"{dir}\"\n")));
    assert_names(&site.error(), &["checks.x.ca_file", &dir]);

    let site = Site::new("");
    let ca = site.dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("write ca");
    let argv = only_argv(&Site::new(&https(&format!("ca_file = {ca:?}\n"))));
    assert!(
        argv.contains(&format!("--ca-file={}", ca.display())),
        "{argv:?}"
    );
}

#[test]
fn a_ca_file_missing_where_the_configuration_is_only_built_is_fine() {
    // As smtp_ca_file: a NixOS build checks the configuration in a sandbox
    // that does not have the machine's files.
    let site = Site::new(&https("ca_file = \"/run/secrets/ca.pem\"\n"));
    assert_names(&site.error(), &["checks.x.ca_file"]);
    Config::load_with(&site.main(), false).expect("valid without the machine's files");
}

/// An openvpn check on `old`, with `extra` as the test writes it.
fn openvpn(extra: &str) -> String {
    let extra = dedent(extra);
    with_hosts(&format!(
        r#"
            [checks.vpn]
            type = "openvpn"
            hosts = ["old"]
            {extra}"#
    ))
}

#[test]
fn key_direction_is_0_or_1_and_only_with_tls_auth() {
    let keys = Site::new("");
    let key = static_key(&keys, "ta.key");
    for d in ["2", "-1", "255"] {
        let site = Site::new(&openvpn(&format!(
            r#"
                tls_auth = {key:?}
                key_direction = {d}
            "#
        )));
        assert_names(
            &site.error(),
            &["site.toml", "checks.vpn.key_direction", "0 or 1"],
        );
    }
    let site = Site::new(&openvpn("key_direction = 1\n"));
    assert_names(&site.error(), &["checks.vpn.key_direction", "tls_auth"]);
    let site = Site::new(&openvpn(&format!(
        r#"
            tls_crypt = {key:?}
            key_direction = 0
        "#
    )));
    assert_names(&site.error(), &["checks.vpn.key_direction", "tls_auth"]);
    for d in ["0", "1"] {
        let argv = only_argv(&Site::new(&openvpn(&format!(
            r#"
                tls_auth = {key:?}
                key_direction = {d}
            "#
        ))));
        let tail: Vec<&str> = argv
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(String::as_str)
            .collect();
        let file = key.display().to_string();
        assert_eq!(tail, ["--tls-auth", &file, "--key-direction", d]);
    }
    // Without key_direction the key is used both ways: no option.
    let argv = only_argv(&Site::new(&openvpn(&format!("tls_auth = {key:?}\n"))));
    assert!(argv.iter().any(|a| a == "--tls-auth"), "{argv:?}");
    assert!(!argv.iter().any(|a| a == "--key-direction"), "{argv:?}");
}

#[test]
fn tls_auth_and_tls_crypt_together_are_refused() {
    let keys = Site::new("");
    let key = static_key(&keys, "ta.key");
    let site = Site::new(&openvpn(&format!(
        r#"
            tls_auth = {key:?}
            tls_crypt = {key:?}
        "#
    )));
    assert_names(
        &site.error(),
        &["site.toml", "checks.vpn.tls_crypt", "not both"],
    );
}

#[test]
fn a_broken_openvpn_key_file_names_the_key() {
    let keys = Site::new("");
    let short = keys.dir.path().join("short.key");
    std::fs::write(
        &short,
        "-----BEGIN OpenVPN Static key V1-----\nabcd\n-----END OpenVPN Static key V1-----\n",
    )
    .expect("write key");
    let site = Site::new(&openvpn(&format!("tls_crypt = {short:?}\n")));
    assert_names(
        &site.error(),
        &[
            "checks.vpn.tls_crypt",
            "256 bytes",
            &short.display().to_string(),
        ],
    );
    let argv = only_argv(&Site::new(&openvpn(&format!(
        "tls_crypt = {:?}\n",
        static_key(&keys, "tc.key")
    ))));
    assert_eq!(argv[argv.len() - 2], "--tls-crypt", "{argv:?}");
}

#[test]
fn dns_zone_hosts_name_the_nameservers_of_each_zone() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org", "example.net"]
            hosts = ["web", "old"]
        "#,
    ));
    let config = site.load().expect("valid");
    let ids: Vec<&str> = config.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["z/example.net", "z/example.org"]);
    let argv: Vec<String> = config.instances[1]
        .argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        argv,
        [
            "plugin",
            "dns-zone",
            "-t",
            "2",
            "-s",
            "front web server=192.0.2.10",
            "-s",
            "front web server=2001:db8::10",
            "-s",
            "old=192.0.2.20",
            "example.org"
        ]
    );

    // ip_version keeps the addresses of one family.
    let site = Site::new(&with_hosts(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
            hosts = ["web", "old"]
            ip_version = 6
        "#,
    ));
    let argv = only_argv(&site);
    assert!(argv.iter().any(|a| a == "-6"), "{argv:?}");
    let servers: Vec<&String> = argv
        .iter()
        .skip_while(|a| *a != "-s")
        .filter(|a| a.contains('='))
        .collect();
    assert_eq!(servers, ["front web server=2001:db8::10"]);

    // Without hosts the zone's NS records are asked: no -s.
    let site = Site::new(&dedent(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
        "#,
    ));
    let argv = only_argv(&site);
    assert!(!argv.iter().any(|a| a == "-s"), "{argv:?}");
}

#[test]
fn dns_zone_hosts_must_exist_and_have_an_address_of_ip_version() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
            hosts = ["nope"]
        "#,
    ));
    assert_names(&site.error(), &["site.toml", "checks.z.hosts", "nope"]);
    let site = Site::new(&with_hosts(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
            hosts = ["old"]
            ip_version = 6
        "#,
    ));
    assert_names(&site.error(), &["checks.z.hosts", "ip_version"]);
    let site = Site::new(&with_hosts(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
            ip_version = 5
        "#,
    ));
    assert_names(&site.error(), &["checks.z.ip_version", "4 or 6"]);
}

#[test]
fn ip_on_a_dns_zone_check_is_refused_in_favour_of_ip_version() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
            hosts = ["web"]
            ip = [6]
        "#,
    ));
    assert_names(&site.error(), &["site.toml", "checks.z.ip", "ip_version"]);
    let site = Site::new(&dedent(
        r#"
            [checks.z]
            type = "dns-zone"
            zones = ["example.org"]
            ip = [4]
        "#,
    ));
    assert_names(&site.error(), &["checks.z.ip"]);
}

/// Where `flag` occurs in `text` at or after `from` as a word of its own
/// (not inside a longer option), and where it ends.
fn find_word(text: &str, flag: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text.get(at..).and_then(|t| t.find(flag)) {
        let start = at + i;
        let end = start + flag.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let open = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '-');
        if open(before) && open(after) {
            return Some(end);
        }
        at = end;
    }
    None
}

/// The program and options of an argv: what documentation must show.
fn options_of(argv: &[std::ffi::OsString]) -> Vec<String> {
    let mut words = Vec::new();
    let program = argv[0].to_string_lossy();
    let program = program.rsplit('/').next().unwrap_or_default();
    if argv[0] == std::env::current_exe().expect("test exe").into_os_string() {
        // A built-in: `picomon plugin NAME`.
        words.push("picomon".to_string());
        words.extend(argv[1..3].iter().map(|a| a.to_string_lossy().into_owned()));
    } else {
        words.push(program.to_string());
    }
    for a in argv.iter().skip(1).map(|a| a.to_string_lossy()) {
        if (a.starts_with('-') && a.len() > 1) || a.starts_with('+') {
            words.push(a.split('=').next().unwrap_or_default().to_string());
        }
    }
    words
}

#[test]
fn readme_and_man_page_show_the_commands_each_type_runs() {
    let site = Site::new("");
    let ca = site.dir.path().join("ca.pem");
    std::fs::write(&ca, "").expect("write ca");
    let key = static_key(&site, "ta.key");
    std::fs::write(
        site.main(),
        dedent(&format!(
            r#"
                [hosts.h]
                ipv4 = "192.0.2.1"
                [checks.ping]
                type = "ping"
                hosts = ["h"]
                [checks.http]
                type = "http"
                hosts = ["h"]
                port = 8080
                status = 200
                vhost = "v"
                string = "s"
                url = "/u"
                [checks.https]
                type = "https"
                hosts = ["h"]
                port = 8443
                status = 200
                vhost = "v"
                string = "s"
                url = "/u"
                ca_file = {ca:?}
                certificate_days = [30, 7]
                [checks.smtp]
                type = "smtp"
                hosts = ["h"]
                port = 2525
                from_addr = "a@b"
                command = "EHLO x"
                response = "250"
                [checks.dns-rec]
                type = "dns-rec"
                hosts = ["h"]
                query = "q"
                timeout = 10
                [checks.dns-zone]
                type = "dns-zone"
                zones = ["z"]
                ip_version = 4
                hosts = ["h"]
                [checks.openvpn]
                type = "openvpn"
                hosts = ["h"]
                port = 1195
                tls_auth = {key:?}
                key_direction = 1
                [checks.openvpn-crypt]
                type = "openvpn"
                hosts = ["h"]
                tls_crypt = {key:?}
                [checks.jabber]
                type = "jabber"
                hosts = ["h"]
                port = 5223
            "#
        )),
    )
    .expect("write config");
    let config = site.load().expect("valid");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/picomon.toml.5"))
        .expect("man/picomon.toml.5");
    let man = man
        .replace("\\-", "-")
        .replace("\\fI", "")
        .replace("\\fB", "")
        .replace("\\fR", "");
    for instance in config.instances.iter() {
        let kind = instance.check.trim_end_matches("-crypt");
        let words = options_of(&instance.argv);
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{kind}` |")))
            .unwrap_or_else(|| panic!("README.md has no row for {kind}"));
        let start = man
            .find(&format!("\n.TP\n.B {kind}\n"))
            .unwrap_or_else(|| panic!("picomon.toml(5) has no paragraph for {kind}"));
        let rest = &man[start + 5..];
        let paragraph = &rest[..rest.find("\n.TP\n").unwrap_or(rest.len())];
        for (name, text) in [("README.md", row), ("picomon.toml(5)", paragraph)] {
            let mut at = 0;
            for word in &words {
                at = find_word(text, word, at).unwrap_or_else(|| {
                    panic!(
                        "{name} does not show `{word}` (in this order: {words:?}) for {kind}, \
                         which runs {}:\n{text}",
                        instance.command_line()
                    )
                });
            }
        }
    }
}

#[test]
fn a_checks_env_reaches_its_instances_sorted() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.c]
            type = "ping"
            hosts = ["web"]
            env = { LC_ALL = "C", HTTPS_PROXY = "" }
        "#,
    ));
    let config = site.load().expect("valid");
    assert_eq!(config.instances.len(), 2);
    for instance in &config.instances {
        assert_eq!(
            instance.env,
            vec![
                ("HTTPS_PROXY".into(), "".into()),
                ("LC_ALL".into(), "C".into())
            ]
        );
    }
}

#[test]
fn a_bad_env_name_or_value_is_refused_naming_the_variable() {
    for (env, why) in [
        ("{ \"\" = \"x\" }", "non-empty"),
        ("{ \"A=B\" = \"x\" }", "'='"),
        ("{ \"A\\u0000\" = \"x\" }", "NUL"),
        ("{ A = \"x\\u0000y\" }", "NUL"),
        ("{ PICOMON_EMAILS__SMTP_PASSWORD = \"x\" }", "PICOMON_"),
        ("{ picomon_base_tick = \"1\" }", "PICOMON_"),
    ] {
        let site = Site::new(&dedent(&format!(
            r#"
                [checks.c]
                type = "command"
                command = ["true"]
                env = {env}
            "#
        )));
        assert_names(&site.error(), &["site.toml", "checks.c.env.", why]);
    }
    let site = Site::new(&dedent(
        r#"
            [checks.c]
            type = "command"
            command = ["true"]
            env = "A=B"
        "#,
    ));
    assert_names(&site.error(), &["site.toml", "checks.c.env"]);
}

#[test]
fn hidden_fragments_are_skipped_as_documented() {
    let site = Site::new("base_tick = 5\n");
    site.fragment(".draft.toml", "base_tick = 7\n");
    // Emacs' lock file: a dangling link with a hidden name.
    std::os::unix::fs::symlink("root@host.1234", site.dir.path().join("site.d/.#a.toml"))
        .expect("symlink");
    let config = site.load().expect("hidden fragments are not read");
    assert_eq!(config.base_tick, Duration::from_secs(5));
    assert_eq!(config.files, vec![site.main()]);
}

#[test]
fn a_fragment_that_cannot_be_read_is_an_error_never_skipped() {
    let site = Site::new("");
    site.fragment("10-ok.toml", "");
    let d = site.dir.path().join("site.d");
    std::os::unix::fs::symlink("/nonexistent/x.toml", d.join("20-gone.toml")).expect("symlink");
    std::fs::create_dir(d.join("30-dir.toml")).expect("mkdir");
    assert_names(
        &site.error(),
        &[
            "site.d/20-gone.toml: a symbolic link to nothing",
            "site.d/30-dir.toml: not a regular file",
        ],
    );
}

#[test]
fn configuration_anyone_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    let site = Site::new("");
    chmod(&site.main(), 0o666);
    assert_names(
        &site.error(),
        &["site.toml: writable by anyone (mode 0666)"],
    );
    chmod(&site.main(), 0o664);
    site.load().expect("group-writable is only warned about");

    site.fragment("a.toml", "");
    let d = site.dir.path().join("site.d");
    chmod(&d.join("a.toml"), 0o646);
    assert_names(&site.error(), &["site.d/a.toml: writable by anyone"]);
    chmod(&d.join("a.toml"), 0o644);
    chmod(&d, 0o1777);
    assert_names(&site.error(), &["site.d: writable by anyone (mode 1777)"]);
}

#[test]
fn flap_limits_default_are_global_and_per_check_and_bounded() {
    let site = Site::new(&format!(
        "flap_window = 20\n{}",
        with_hosts(
            r#"
                [checks.a]
                type = "ping"
                hosts = ["web"]
                [checks.b]
                type = "ping"
                hosts = ["old"]
                flap_switches = 2
                [emails]
                digest_over = 0
            "#
        )
    ));
    let config = site.load().expect("valid");
    let limits = |check: &str| {
        config
            .instances
            .iter()
            .find(|i| i.check == check)
            .expect("instance")
            .flap
    };
    assert_eq!((limits("a").switches, limits("a").window), (4, 20));
    assert_eq!((limits("b").switches, limits("b").window), (2, 20));
    assert_eq!(config.emails.digest_over, 0);
    for (bad, key) in [
        ("flap_window = 65\n", "flap_window"),
        (
            "flap_switches = 10\n",
            "flap_switches: must be below flap_window (10)",
        ),
        (
            &dedent(
                r#"
                    [checks.a]
                    type = "command"
                    command = ["true"]
                    flap_window = 3
                "#,
            ),
            "checks.a.flap_switches: must be below flap_window (3)",
        ),
        (
            &dedent(
                r#"
                    [emails]
                    digest_over = -1
                "#,
            ),
            "emails.digest_over",
        ),
    ] {
        let err = Site::new(bad).error();
        assert!(err.contains(key), "{bad}: {err}");
        assert!(err.contains("site.toml"), "{err}");
    }
}

#[test]
fn depends_names_the_same_host_and_family_and_unknown_names_name_the_key() {
    let site = Site::new(&with_hosts(
        r#"
            [checks.ping]
            type = "ping"
            hosts = ["web", "old"]
            [checks.http]
            type = "http"
            hosts = ["web"]
            depends = ["ping"]
        "#,
    ));
    let config = site.load().expect("valid");
    assert_eq!(config.parents["http/web/ipv6"], vec!["ping/web/ipv6"]);
    assert_eq!(config.parents["http/web/ipv4"], vec!["ping/web/ipv4"]);
    let err = Site::new(&with_hosts(
        r#"
            [checks.http]
            type = "http"
            hosts = ["web"]
            depends = ["pnig"]
        "#,
    ))
    .error();
    assert!(
        err.contains("checks.http.depends: unknown check \"pnig\""),
        "{err}"
    );
}

#[test]
fn a_notifier_of_an_unknown_type_or_without_a_command_is_refused_by_its_key() {
    let site = Site::new(&dedent(
        r#"
            [notify.pager]
            type = "pigeon"
            [notify.ntfy]
            type = "command"
            command = []
            [notify.slow]
            type = "command"
            command = ["curl"]
            timeout = 0
            retry_every = -1
            [notify.".."]
            type = "command"
            command = ["true"]
        "#,
    ));
    let err = site.error();
    assert_names(
        &err,
        &[
            "notify.pager.type",
            "notify.ntfy.command",
            "notify.slow.timeout",
            "notify.slow.retry_every",
            "notify...",
        ],
    );
    assert!(err.contains("unknown notifier type \"pigeon\""), "{err}");
    let site = Site::new(&dedent(
        r#"
            [notify.ntfy]
            type = "command"
            command = ["true"]
            urls = []
        "#,
    ));
    assert!(
        site.error()
            .contains("notify.ntfy.urls: not a key of a notifier of type \"command\""),
        "{}",
        site.error()
    );
    let site = Site::new(&dedent(
        r#"
            [notify.ntfy]
            type = "command"
            command = ["true"]
            url = "x"
        "#,
    ));
    assert!(
        site.error().contains("unknown key `url`"),
        "{}",
        site.error()
    );
}

#[test]
fn an_alertmanager_notifier_with_a_bad_url_a_missing_token_file_or_a_label_of_picomon_is_refused_by_its_key(
) {
    let site = Site::new(&dedent(
        r#"
            [notify.am]
            type = "alertmanager"
            urls = ["http://am1:9093", "am2:9093", "http://exa mple"]
            bearer_token_file = "/nonexistent/token"
            labels = { site = "paris", severity = "x", "a-b" = "y" }
            resend_every = 0
            command = ["true"]
            [notify.none]
            type = "alertmanager"
            username = "u"
        "#,
    ));
    let err = site.error();
    assert_names(
        &err,
        &[
            "notify.am.urls",
            "notify.am.bearer_token_file",
            "notify.am.labels",
            "notify.am.resend_every",
            "notify.am.command",
            "notify.none.urls",
            "notify.none.password_file",
        ],
    );
    assert!(err.contains("\"am2:9093\""), "{err}");
    assert!(err.contains("\"http://exa mple\""), "{err}");
    assert!(!err.contains("http://am1:9093"), "{err}");
    assert!(err.contains("/nonexistent/token"), "{err}");
    assert!(
        err.contains("\"severity\": picomon sets this label itself"),
        "{err}"
    );
    assert!(err.contains("\"a-b\""), "{err}");
    assert!(!err.contains("\"site\""), "{err}");
}

#[test]
fn an_alertmanager_notifier_reads_its_secrets_and_dump_shows_only_their_files() {
    let site = Site::new("");
    let token = site.dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("write token");
    std::fs::write(
        site.main(),
        dedent(&format!(
            r#"
                [notify.am]
                type = "alertmanager"
                urls = ["https://am1:9093/"]
                bearer_token_file = "{}"
                labels = {{ site = "paris" }}
            "#,
            token.display()
        )),
    )
    .expect("write main");
    let config = site.load().expect("valid");
    let [Notifier {
        kind: NotifierKind::Alertmanager(am),
        ..
    }] = config.notifiers.as_slice()
    else {
        panic!("one alertmanager notifier: {:?}", config.notifiers);
    };
    assert_eq!(
        am.auth,
        Some(super::HttpAuth::Bearer("s3cret-token".into()))
    );
    assert_eq!(am.resend_every, std::time::Duration::from_secs(60));
    assert_eq!(am.labels.get("site").map(String::as_str), Some("paris"));
    assert!(!format!("{:?}", config.notifiers).contains("s3cret"));
    let dumped = config.dump().expect("dump");
    assert!(!dumped.contains("s3cret"), "{dumped}");
    assert!(dumped.contains("bearer_token_file"), "{dumped}");
    let again = Site::new(&dumped).load().expect("dump is valid");
    assert_eq!(again.notifiers, config.notifiers);
}

#[test]
fn a_notifier_is_validated_and_dumped_again() {
    let site = Site::new(&dedent(
        r#"
            [notify.ntfy]
            type = "command"
            command = ["curl", "-d", "x"]
            retry_every = 5
        "#,
    ));
    let config = site.load().expect("valid");
    assert_eq!(
        config.notifiers,
        [Notifier {
            name: "ntfy".into(),
            kind: NotifierKind::Command {
                argv: vec!["curl".into(), "-d".into(), "x".into()],
                timeout: std::time::Duration::from_secs(10),
            },
            retry_every: std::time::Duration::from_secs(5),
        }]
    );
    let dumped = config.dump().expect("dump");
    assert!(dumped.contains("[notify.ntfy]"), "{dumped}");
    let again = Site::new(&dumped).load().expect("dump is valid");
    assert_eq!(again.notifiers, config.notifiers);
}

#[test]
fn an_https_url_or_vhost_the_probe_cannot_send_is_refused_naming_the_key() {
    for (extra, key) in [
        ("url = \"login\"\n", "checks.x.url"),
        ("url = \"/a b\"\n", "checks.x.url"),
        ("vhost = \"www example.org\"\n", "checks.x.vhost"),
    ] {
        let site = Site::new(&https(extra));
        assert_names(&site.error(), &["site.toml", key]);
    }
    Site::new(&https(
        "url = \"/login?next=/\"\nvhost = \"www.example.org\"\n",
    ))
    .load()
    .expect("a path and a DNS name are taken");
}

#[test]
fn a_maintenance_window_that_cannot_work_is_an_error_naming_its_key() {
    let window = |cron: &str, duration: &str| {
        format!(
            "[maintenance.nightly]\npattern = \"backup/*\"\ncron = \"{cron}\"\nduration = {duration}\nreason = \"backup\"\n"
        )
    };
    let site = Site::new(&window("0 2 * * 8", "3600"));
    assert_names(
        &site.error(),
        &["maintenance.nightly.cron", "0 2 * * 8", "site.toml"],
    );
    let site = Site::new(&window("0 0 2 * * 0", "3600"));
    assert_names(&site.error(), &["maintenance.nightly.cron", "five fields"]);
    // Every hour, for two: it would never end.
    let site = Site::new(&window("0 * * * *", "7200"));
    assert_names(
        &site.error(),
        &["maintenance.nightly.duration", "longer than the 1h 00m"],
    );
    let site = Site::new(&window("0 2 * * 0", "0"));
    assert_names(&site.error(), &["maintenance.nightly.duration"]);
    let site = Site::new("[maintenance.x]\ncron = \"0 2 * * 0\"\nduration = 60\nreason = \"r\"\n");
    assert_names(&site.error(), &["maintenance.x.pattern", "empty"]);
    let site = Site::new("[maintenance.x]\npattern = \"*\"\ncron = \"0 2 * * 0\"\nduration = 60\n");
    assert_names(&site.error(), &["maintenance.x.reason"]);
    let site = Site::new(&format!(
        "time_zone = \"Mars/Olympus\"\n{}",
        window("0 2 * * 0", "60")
    ));
    assert_names(&site.error(), &["time_zone", "Mars/Olympus"]);
    let site = Site::new(&format!(
        "time_zone = \"Europe/Berlin\"\n{}",
        window("0 2 * * 0", "3600")
    ));
    let config = site.load().expect("a window that works");
    assert_eq!(config.maintenance.len(), 1);
    assert_eq!(config.maintenance[0].duration, Duration::from_secs(3600));
}

#[test]
fn contacts_that_cannot_be_told_or_are_unknown_are_errors_naming_the_key() {
    let site = Site::new("[contacts.web]\n");
    assert_names(&site.error(), &["contacts.web", "needs `to`"]);
    let site = Site::new("[contacts.web]\nnotify = [\"pager\"]\n");
    assert_names(&site.error(), &["contacts.web.notify", "pager"]);
    let site = Site::new("[contacts.web]\nto = [\"not an address\"]\n");
    assert_names(&site.error(), &["contacts.web.to"]);
    let site = Site::new(
        "[contacts.web]\nto = [\"web@example.org\"]\n[checks.x]\ntype = \"command\"\ncommand = [\"/bin/true\"]\ncontacts = [\"wbe\"]\n",
    );
    assert_names(&site.error(), &["checks.x.contacts", "wbe", "site.toml"]);
    let site = Site::new(
        "[contacts.web]\nto = [\"web@example.org\"]\ninstances = [\"y*\"]\n[contacts.db]\nto = [\"db@example.org\"]\n[checks.x]\ntype = \"command\"\ncommand = [\"/bin/true\"]\ncontacts = [\"db\", \"web\"]\n[checks.y]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n[checks.z]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n",
    );
    let config = site.load().expect("contacts that work");
    let x = config.audience("x");
    assert_eq!(x.contacts, ["db", "web"]);
    assert_eq!(x.to, ["db@example.org", "web@example.org"]);
    assert_eq!(config.audience("y").to, ["web@example.org"]);
    assert!(config.audience("z").contacts.is_empty());
}
