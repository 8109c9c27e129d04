//! The client's address behind reverse proxies (setting `trusted_proxies`).
//!
//! The sign-in limiter and the audit log key on the client's address. Behind
//! a reverse proxy every connection comes from the proxy, so the proxy's
//! `X-Forwarded-For` must be read — but only when the connection really comes
//! from a proxy we trust (`trusted_proxies`): anyone else could write any
//! address into that header and escape the limit. The header is read from
//! the right (the hop nearest to us) leftwards, skipping trusted proxies; the
//! first address that is not a trusted proxy is the client. A missing or
//! malformed header leaves the nearest trusted hop as the client.

use std::net::IpAddr;

/// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<(IpAddr, u8)>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_matches(block: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let (net, addr, width): (u128, u128, u32) = match (block, canonical(ip)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let bits = u32::from(bits).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    net.checked_shr(shift) == addr.checked_shr(shift)
}

impl TrustedProxies {
    /// Parses `10.0.0.5`, `10.0.0.0/8`, `fd00::/8`; the error names the entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut blocks = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let (addr, bits) = match entry.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| {
                format!("`{entry}` is not an IP address or CIDR block such as 10.0.0.0/8")
            })?;
            let addr = canonical(addr);
            let width = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => width,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= width)
                    .ok_or_else(|| format!("`{entry}` has a prefix length outside 0–{width}"))?,
            };
            blocks.push((addr, bits));
        }
        Ok(Self { blocks })
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks
            .iter()
            .any(|(block, bits)| prefix_matches(*block, *bits, ip))
    }

    /// The client's address for a connection from `peer` whose request
    /// carries these `X-Forwarded-For` header values, in order.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return client;
            };
            client = canonical(ip);
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers<'a>(xff: &[&'a str]) -> Vec<&'a str> {
        xff.to_vec()
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        let forwarded = headers(&["203.0.113.9"]);
        // From a trusted proxy: the forwarded address.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), forwarded.clone()),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(ip("fd12::1"), forwarded.clone()),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(ip("::ffff:192.168.1.7"), forwarded.clone()),
            ip("203.0.113.9")
        );
        // From anyone else: the header is ignored.
        assert_eq!(
            proxies.client(ip("192.168.1.8"), forwarded.clone()),
            ip("192.168.1.8")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.2.3"), forwarded.clone()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // A client that forges the header gets its forgery skipped: the
        // proxy appended the real address.
        let forged = headers(&["1.1.1.1, 198.51.100.4", "10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), forged), ip("198.51.100.4"));
        assert_eq!(proxies.client(ip("10.0.0.1"), headers(&[])), ip("10.0.0.1"));
        assert_eq!(
            proxies.client(ip("10.0.0.1"), headers(&["garbage, 10.0.0.3"])),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn entries_are_checked() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
        assert!(
            TrustedProxies::parse(&["::/0"])
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        assert!(
            !TrustedProxies::parse(&["10.0.0.0/8"])
                .unwrap()
                .contains(ip("11.0.0.1"))
        );
    }
}
