//! The systemd service manager's notification protocol (sd_notify, without libsystemd): a
//! datagram of `KEY=VALUE` lines to the unix socket in `$NOTIFY_SOCKET` (a path, or an
//! abstract name written with a leading `@`). `READY=1` once the listeners are bound,
//! `STOPPING=1` at shutdown, and `WATCHDOG=1` every half `$WATCHDOG_USEC` from the IMAP
//! executor itself, so a wedged executor stops the pings and systemd restarts the service.
//! Without `$NOTIFY_SOCKET` (not under systemd, or `Type=simple`) nothing is sent.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. `"READY=1"`) to the service manager, if there is one. Never blocks:
/// a full socket buffer drops the message (the next one follows).
pub fn notify(state: &str) {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        notify_to(&path, state);
    }
}

/// [`notify`] to the socket `path` (`@name`: abstract).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) {
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let _ = sock.set_nonblocking(true);
    let bytes = path.as_encoded_bytes();
    let r = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(path))
    };
    if let Err(e) = r {
        crate::debug!("notify", "telling systemd {state:?}: {e}");
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this process
/// (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("s3imap-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1");
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let abs = format!("@s3imap-notify-test-{}", std::process::id());
        let named = {
            use std::os::linux::net::SocketAddrExt;
            let a =
                std::os::unix::net::SocketAddr::from_abstract_name(&abs.as_bytes()[1..]).unwrap();
            UnixDatagram::bind_addr(&a).unwrap()
        };
        notify_to(std::ffi::OsStr::new(&abs), "WATCHDOG=1");
        let n = named.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
