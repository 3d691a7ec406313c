//! Integration tests: the real `picomon` binary against real plugins from
//! monitoring-plugins-basic, script plugins and loopback servers.

// Shared with watchdog/tests, which use other parts of them.
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod smtp;

mod cli;
mod daemon;
mod mail;
mod package;
mod plugins;
mod units;
