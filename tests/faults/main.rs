//! Fault injection (issue 8, "exactly once across faults"): the real
//! `picomon`, alone and under the real `picomon-watchdog`, is killed with
//! SIGKILL at random moments while checks switch and a real SMTP server
//! is down, slow or delivering a burst, and every mail is counted at the
//! server. A test binary of its own, so that its figures print apart
//! (`cargo test --test faults -- --nocapture`).

// Test and bench code: an expect() is an assertion with its message, and
// the helpers shared between test binaries are `pub` for each other.
#![allow(clippy::expect_used, unreachable_pub)]

// Shared with the other test binaries, which use other parts of them.
#[path = "../integration/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../integration/smtp.rs"]
#[allow(dead_code)]
mod smtp;

mod campaign;
mod damaged_state;
mod escapes;
mod exactly_once;
mod held_port;
mod kill_between_mails;
mod overload;
mod planted_links;
mod refusals;
mod rng;
mod special_entries;
mod status_socket;
mod stop;
mod switch_window;
mod wall_clock_step;
