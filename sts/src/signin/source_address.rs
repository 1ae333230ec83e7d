//! The address a request comes from, for throttling: the TCP peer, unless the peer is a
//! trusted proxy, in which case the right-most address in `X-Forwarded-For` that is not a
//! trusted proxy (the left part of the header is whatever the client wrote); and the source
//! the budgets count it as (an IPv6 address's /64).

use std::net::IpAddr;

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`) or a single address.
#[derive(Clone, Debug, PartialEq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text} is not an address or CIDR"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text} has a bad prefix length"))?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    /// Whether `address` is in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        let bits = |a: IpAddr| -> (u128, u8) {
            match a {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        let ((net, net_len), (addr, addr_len)) = (bits(self.network), bits(address));
        if net_len != addr_len {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        net & mask == addr & mask
    }
}

/// The source that budgets count: an IPv4 address as it is, an IPv6 address as its /64 (one
/// home, one VM or one customer gets a whole /64, so counting single IPv6 addresses would give
/// an attacker 2^64 fresh budgets). An IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn budget_source(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

/// The client's address.
pub fn source_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|c| c.contains(a));
    if !is_trusted(peer) {
        return peer;
    }
    let hops = forwarded_for.unwrap_or_default().split(',').rev();
    let mut last = peer;
    for hop in hops {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) if is_trusted(address) => last = address,
            Ok(address) => return address,
            Err(_) => return last,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::1".parse().unwrap()];
        assert_eq!(
            source_address(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            source_address(ip("10.1.2.3"), Some("6.6.6.6, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            source_address(ip("10.1.2.3"), Some("198.51.100.7, 10.9.9.9"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            source_address(ip("10.1.2.3"), None, &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            source_address(ip("fd00::1"), Some("garbage"), &trusted),
            ip("fd00::1")
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!(
            "::ffff:10.2.3.4"
                .parse::<IpAddr>()
                .is_ok_and(|a| trusted[0].contains(a))
        );
        assert!(!trusted[0].contains(ip("11.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn an_ipv6_source_is_its_slash_64() {
        assert_eq!(budget_source(ip("2001:db8:1:2::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            budget_source(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(budget_source(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(budget_source(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(budget_source(ip("203.0.113.7")), ip("203.0.113.7"));
    }
}
