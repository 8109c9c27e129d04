//! `caseguard healthcheck`: asks a running service whether it is ready, for
//! container health checks where no curl exists. Runs before the settings
//! are read, and logs nothing.

use std::io::{Read, Write};

use super::Failure;

/// One HTTP/1.0 GET with a 5-second limit; success is status 200.
pub(super) fn run(url: &str) -> Result<(), Failure> {
    use std::net::ToSocketAddrs;
    let parsed = url::Url::parse(url).map_err(|e| Failure::usage(format!("--url: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(Failure::usage(
            "--url: only http:// (the service behind its proxy)",
        ));
    }
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port_or_known_default().unwrap_or(80);
    let timeout = std::time::Duration::from_secs(5);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| Failure::runtime(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| Failure::runtime(format!("{host}: no address")))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Failure::runtime(format!("{url}: {e}")))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {host}\r\n\r\n",
        parsed.path()
    )
    .map_err(|e| Failure::runtime(format!("{url}: {e}")))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|e| Failure::runtime(format!("{url}: {e}")))?;
    let status_line = String::from_utf8_lossy(head.get(..n).unwrap_or_default()).into_owned();
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status == "200" {
        Ok(())
    } else {
        Err(Failure::runtime(format!("{url}: status {status}")))
    }
}
