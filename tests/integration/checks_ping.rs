//! ping against a target whose echo requests are dropped (nft in a
//! network namespace): CRITICAL on every run, never WARNING.

use crate::harness::{dedent, Site};
use crate::netns::{result, Netns};

#[test]
fn a_silent_host_is_critical_on_every_run_not_warning() {
    let ns = Netns::new();
    ns.drop_traffic_to("127.0.0.66");
    let mut config = dedent(
        r#"
            [hosts.up]
            ipv4 = "127.0.0.1"
            ipv6 = "::1"
            [hosts.silent]
            ipv4 = "127.0.0.66"
            [checks.alive]
            type = "ping"
            hosts = ["up"]
        "#,
    );
    // Several at once: the race that made some runs WARNING was per run.
    for i in 0..4 {
        config.push_str(&dedent(&format!(
            r#"
                [checks.dead{i}]
                type = "ping"
                hosts = ["silent"]
                timeout = 2
            "#
        )));
    }
    let site = Site::new(&config);
    let objs = ns.run_once(&site);
    for id in ["alive/up/ipv4", "alive/up/ipv6"] {
        let (state, output) = result(&objs, id);
        assert_eq!(state, "OK", "{id}: {output}");
        assert!(output.starts_with("PING OK - "), "{output}");
        assert!(output.contains(" answered in "), "{output}");
    }
    for i in 0..4 {
        let (state, output) = result(&objs, &format!("dead{i}/silent/ipv4"));
        assert_eq!(state, "CRITICAL", "{output}");
        assert!(
            output.starts_with("PING CRITICAL - no reply from 127.0.0.66 within 1 s"),
            "{output}"
        );
    }
}
