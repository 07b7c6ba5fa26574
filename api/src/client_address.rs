//! Which address a request comes from. Behind a reverse proxy or load balancer every connection
//! comes from the proxy, so the per-address limits would throttle every client as one, and the
//! `/metrics` loopback rule would let anyone through a proxy on the same host. With the proxies
//! named in `CLARITY_TRUSTED_PROXIES`, the client is the right-most address of
//! `X-Forwarded-For` that is not one of them: proxies append, so everything left of the last
//! untrusted hop could have been written by the client itself and is never believed.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// The request's client address, as the limits middleware resolved it (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The proxies whose `X-Forwarded-For` is believed: addresses or CIDR ranges, comma-separated
/// (`10.0.0.0/8, 192.168.1.7, fd00::/8`). Empty: none (the peer is the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (address, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("`{item}` is not an IP address or CIDR range"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("`{item}`: the prefix length must be 0 to {max}"))?,
            };
            nets.push((address, prefix));
        }
        Ok(Self(nets))
    }
}

impl TrustedProxies {
    /// Whether `address` is one of the trusted proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0
            .iter()
            .any(|&(net, prefix)| match (canonical(net), address) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    masked(u32::from(n).into(), prefix, 32)
                        == masked(u32::from(a).into(), prefix, 32)
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    masked(u128::from(n), prefix, 128) == masked(u128::from(a), prefix, 128)
                }
                _ => false,
            })
    }

    /// The client of a request that arrived from `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        // Every X-Forwarded-For header, in order, as one list; right to left, skip trusted hops.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(address) => {
                    client = canonical(address);
                    if !self.contains(client) {
                        return client;
                    }
                }
                // An unreadable hop: nothing left of it can be believed; the last trusted hop
                // (or the peer) is the client as far as anyone can tell.
                Err(_) => return client,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.5"), &headers(&["1.2.3.4"])),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.168.1.7".parse().unwrap();
        // The client forged the first entry; the proxy appended the real address.
        let h = headers(&["6.6.6.6, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(trusted.client(ip("192.168.1.7"), &h), ip("203.0.113.9"));
        assert_eq!(
            trusted.client(ip("10.9.9.9"), &headers(&[])),
            ip("10.9.9.9")
        );
        // A peer that is not a trusted proxy is never believed.
        assert_eq!(trusted.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_last_trusted_address() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&["203.0.113.9, garbage, 10.0.0.2"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn ranges_match_by_prefix_and_mapped_ipv4_counts_as_ipv4() {
        let trusted: TrustedProxies = "172.16.0.0/12,fd00::/8,::1".parse().unwrap();
        assert!(trusted.contains(ip("172.31.255.255")));
        assert!(!trusted.contains(ip("172.32.0.0")));
        assert!(trusted.contains(ip("fd12::1")));
        assert!(trusted.contains(ip("::1")));
        assert!(trusted.contains(ip("::ffff:172.16.0.1")));
        assert!(!trusted.contains(ip("fe80::1")));
        let everyone: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(everyone.contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_refused_at_start_up() {
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.internal".parse::<TrustedProxies>().is_err());
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::default()));
    }
}
