//! Servers the tests run on the bed's host side (an S3 server, an ACME
//! server), reached by the hosts and their pods through the bed's bridge
//! address, and killed when the test ends.

#![allow(dead_code)] // each test file uses a different part of this module

use std::process::Child;
use std::time::{Duration, Instant};

/// A child process killed (and reaped) on drop.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bed's host-side address: the one the hosts use for the apt proxy.
pub fn address() -> String {
    let proxy = std::env::var("SELFHOST_TEST_APT_PROXY").expect("SELFHOST_TEST_APT_PROXY (testbed env)");
    proxy
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A port free on `addr` now.
pub fn free_port(addr: &str) -> u16 {
    std::net::TcpListener::bind((addr, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on the host side")
}

/// Wait (30 s at most) until something accepts connections on `addr:port`.
pub fn wait_listening(addr: &str, port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((addr, port)).is_err() {
        assert!(Instant::now() < until, "{what} did not listen on {addr}:{port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
