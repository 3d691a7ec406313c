//! The Debian package on the platform it ships for: a Debian bookworm
//! root made by debootstrap from the mirror apt is configured with, booted
//! under its own systemd with systemd-nspawn, where the built .deb is
//! installed, configured, run, reloaded, upgraded, removed and purged the
//! way an operator does, with a real SMTP server inside. Needs root,
//! debootstrap, systemd-nspawn and lintian (scripts/deps installs them);
//! fails, never skips, when one is missing. The pristine root is cached
//! under /var/tmp, so only the first run pays for debootstrap.

// A test's expect() is its assertion; the modules are the test's own.
#![allow(clippy::expect_used, unreachable_pub)]

mod deb;
mod lint;
mod machine;
mod operator;
mod sources;
