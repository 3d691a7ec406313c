//! Integration tests: the real `picomon` binary against real plugins from
//! monitoring-plugins-basic, script plugins and loopback servers.

mod harness;
mod smtp;

mod cli;
mod daemon;
mod mail;
mod plugins;
