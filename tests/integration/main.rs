//! Integration tests: the real `picomon` binary against real plugins from
//! monitoring-plugins-basic, script plugins and loopback servers.

mod harness;

mod cli;
mod daemon;
mod plugins;
