//! Who this machine is, for mail: its FQDN (the default sender's domain
//! and the SMTP greeting) and the parts of a mailbox.

use std::sync::OnceLock;

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
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let short = match ok {
        true => String::from_utf8_lossy(&buf[..end]).into_owned(),
        false => "localhost".to_string(),
    };
    canonical_name(&short).unwrap_or(short)
}

fn canonical_name(host: &str) -> Option<String> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we only set flags.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and pointers; `res` is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, so `res` points to a valid list.
    let name = unsafe {
        let canon = (*res).ai_canonname;
        let name = (!canon.is_null()).then(|| {
            std::ffi::CStr::from_ptr(canon)
                .to_string_lossy()
                .into_owned()
        });
        libc::freeaddrinfo(res);
        name
    };
    name.filter(|n| !n.is_empty())
}
