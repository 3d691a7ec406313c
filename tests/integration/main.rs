//! Integration tests: the real `picomon` binary against real plugins from
//! monitoring-plugins-basic, script plugins and loopback servers.

// Test and bench code: an expect() is an assertion with its message, and
// the helpers shared between test binaries are `pub` for each other.
#![allow(clippy::expect_used, unreachable_pub)]

// Shared with watchdog/tests, which use other parts of them.
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod smtp;

mod alertmanager;
mod checks_dns;
mod checks_https;
mod checks_jabber;
mod checks_openvpn;
mod checks_ping;
mod cli;
mod contacts;
mod daemon;
mod docs;
mod durability;
mod fuzz;
mod heartbeat;
mod mail;
mod maintenance;
mod migrate;
#[allow(dead_code)]
mod netns;
mod notify;
mod package;
mod plugins;
mod push;
mod reminders;
mod runaway;
mod silence;
mod status;
mod storms;
mod units;
