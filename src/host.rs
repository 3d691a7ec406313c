//! Who this machine is, for mail: its FQDN (the default sender's domain
//! and the SMTP greeting) and the parts of a mailbox.

use std::sync::OnceLock;

use crate::sys;

/// The `From:` header: as configured, else `Picomon <picomon@FQDN>`.
pub fn from_header(configured: Option<&str>) -> String {
    match configured {
        Some(from) => from.to_string(),
        None => format!("Picomon <picomon@{}>", fqdn()),
    }
}

/// The bare address of a `Name <addr>` or `addr` mailbox.
pub fn address_of(mailbox: &str) -> String {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(start), Some(end)) if start < end => mailbox[start + 1..end].trim().to_string(),
        _ => mailbox.trim().to_string(),
    }
}

/// This machine's fully qualified name, as the resolver gives it, else its
/// plain host name. Asked once per process: the lookup can wait on a dead
/// resolver, and a reload inside the daemon loop must never do that.
pub fn fqdn() -> &'static str {
    static FQDN: OnceLock<String> = OnceLock::new();
    FQDN.get_or_init(lookup_fqdn)
}

fn lookup_fqdn() -> String {
    let short = sys::hostname().unwrap_or_else(|| "localhost".to_string());
    sys::canonical_name(&short).unwrap_or(short)
}
