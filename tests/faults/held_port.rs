//! A loopback port kept for one SMTP server across its outages: bound
//! (with SO_REUSEADDR) but not listening, so that a connection to it is
//! refused like to a stopped server, aiosmtpd (which also sets
//! SO_REUSEADDR) can listen on it again, and no other test's server picks
//! it in between and takes picomon's mail.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct HeldPort {
    _socket: OwnedFd,
    pub port: u16,
}

impl HeldPort {
    pub fn new() -> HeldPort {
        // SAFETY: plain socket calls on a descriptor owned here; every
        // pointer is to a local of the right size.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let one: libc::c_int = 1;
            let set = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(set, 0, "SO_REUSEADDR: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                len,
            );
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut got: libc::sockaddr_in = std::mem::zeroed();
            let mut got_len = len;
            let named = libc::getsockname(
                socket.as_raw_fd(),
                (&mut got as *mut libc::sockaddr_in).cast(),
                &mut got_len,
            );
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            HeldPort {
                _socket: socket,
                port: u16::from_be(got.sin_port),
            }
        }
    }
}

#[test]
fn a_held_port_refuses_connections_and_no_free_port_is_it() {
    let held = HeldPort::new();
    let refused = std::net::TcpStream::connect(("127.0.0.1", held.port))
        .expect_err("nothing listens on a held port");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    for _ in 0..200 {
        assert_ne!(crate::smtp::SmtpServer::free_port(), held.port);
    }
}
