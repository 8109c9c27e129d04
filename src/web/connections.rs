//! Open connections per client address (issue 21.5): one address holds at
//! most `max_connections_per_address` connections at once; beyond that a new
//! connection is closed as soon as it is accepted, before a byte is read, so
//! idle connections from one client can neither exhaust the descriptors nor
//! crowd out `/healthz` and everyone else. Counted at the acceptor
//! (`HttpServer::on_connect`), released when the connection ends (its slot
//! lives in the connection's data). Connections from `trusted_proxies` are
//! not counted: behind a proxy every client shares its address, and the
//! proxy limits per client (`deploy/nginx`: `limit_conn`). The server-wide
//! cap is actix-web's `max_connections`.

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::Extensions;

use crate::config::proxies::TrustedProxies;

/// The count of open connections per client address.
#[derive(Debug)]
pub struct ConnectionLimits {
    per_address: usize,
    trusted: Arc<TrustedProxies>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it (the connection ended) frees it.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock()
            && let Some(count) = open.get_mut(&self.address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

impl ConnectionLimits {
    pub fn new(per_address: usize, trusted: Arc<TrustedProxies>) -> Arc<Self> {
        Arc::new(Self {
            per_address,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `address`, or `None` when that
    /// address holds its limit already. A poisoned count admits nobody.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(address).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            limits: self.clone(),
            address,
        })
    }

    /// Open connections from `address` now.
    pub fn open_from(&self, address: IpAddr) -> usize {
        self.open
            .lock()
            .map_or(0, |open| open.get(&address).copied().unwrap_or(0))
    }
}

/// The `on_connect` hook: admits the connection or closes it at once.
pub fn on_connect(
    limits: Arc<ConnectionLimits>,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    move |io, data| {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        let address = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if limits.trusted.contains(address) {
            return;
        }
        match limits.admit(address) {
            Some(slot) => {
                data.insert(slot);
            }
            None => {
                // Reads see the end at once: the connection is dropped
                // before anything of it is parsed.
                if let Err(error) =
                    socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both)
                {
                    tracing::warn!(%error, "cannot close a connection over the per-address limit");
                }
                tracing::debug!("connection refused: the address holds its limit");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_limit_and_slots_come_back() {
        let limits = ConnectionLimits::new(2, Arc::new(TrustedProxies::default()));
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = limits.admit(one).unwrap();
        let b = limits.admit(one).unwrap();
        assert!(limits.admit(one).is_none());
        assert!(limits.admit(other).is_some());
        drop(a);
        assert_eq!(limits.open_from(one), 1);
        let c = limits.admit(one);
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(limits.open_from(one), 0);
    }
}
