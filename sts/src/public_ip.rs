//! Which addresses a tenant-chosen URL may reach: public unicast only. The tables below are the
//! blocks of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, as updated;
//! read in 2026) that are not globally reachable, or are tunnels and translators that deliver
//! to an address we would refuse, plus multicast. No maintained crate follows the registries
//! and also looks inside NAT64 addresses, so the table is ours; add a row when IANA does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

/// IPv4 blocks refused, as (block, what it is).
const V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network (RFC 791)"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link local (RFC 3927)"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    // The whole block, though the registry marks the anycast 192.0.0.9 and .10 global: no
    // key set is served from them, and DS-Lite, the dummy address and NAT64 discovery are in it.
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation (RFC 5737)"),
    (
        "192.88.99.0/24",
        "6to4 relay anycast, deprecated (RFC 7526)",
    ),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (RFC 5737)"),
    ("203.0.113.0/24", "documentation (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    (
        "240.0.0.0/4",
        "reserved, and the broadcast address (RFC 1112, RFC 919)",
    ),
];

/// IPv6 blocks refused, as (block, what it is). IPv4-mapped addresses and the NAT64
/// well-known prefix are not here: they are judged by the IPv4 address inside.
const V6: &[(&str, &str)] = &[
    // ::/128 and ::1/128 in the registry; the rest of ::/96 is IPv4-compatible, deprecated.
    ("::/96", "unspecified, loopback, IPv4-compatible (RFC 4291)"),
    (
        "64:ff9b:1::/48",
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
    // The whole block (Teredo, benchmarking, ORCHID and ORCHIDv2, AMT, AS112, DRIP, the
    // anycast addresses): its few globally reachable parts are overlays and anycast services.
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    // A 6to4 relay forwards to the IPv4 address inside, which may be private.
    ("2002::/16", "6to4, deprecated (RFC 3056, RFC 7526)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link local (RFC 4291)"),
    ("fec0::/10", "site local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
];

/// The NAT64 well-known prefix (RFC 6052): a DNS64 resolver puts IPv4-only hosts there, so
/// an IPv6-only cluster needs it, and the gateway delivers to the IPv4 address inside.
static NAT64: LazyLock<Block<u128>> = LazyLock::new(|| v6_block("64:ff9b::/96"));

/// IANA's IPv6 Address Space registry gives only this to global unicast; the rest is reserved
/// or unassigned, and the table names the blocks in use there.
static GLOBAL_UNICAST: LazyLock<Block<u128>> = LazyLock::new(|| v6_block("2000::/3"));

/// A block as (network, mask).
type Block<T> = (T, T);

fn parse<A: std::str::FromStr, T>(cidr: &str, bits: fn(A) -> T, mask: fn(u32) -> T) -> Block<T>
where
    A::Err: std::fmt::Debug,
{
    let (net, len) = cidr.split_once('/').expect("a block is address/length");
    let net = bits(net.parse().expect("a block's address parses"));
    (net, mask(len.parse().expect("a block's length parses")))
}

fn v4_block(cidr: &str) -> Block<u32> {
    parse(
        cidr,
        |a: Ipv4Addr| a.to_bits(),
        |len| u32::MAX.checked_shl(32 - len).unwrap_or(0),
    )
}

fn v6_block(cidr: &str) -> Block<u128> {
    parse(
        cidr,
        |a: Ipv6Addr| a.to_bits(),
        |len| u128::MAX.checked_shl(128 - len).unwrap_or(0),
    )
}

static V4_BLOCKS: LazyLock<Vec<Block<u32>>> =
    LazyLock::new(|| V4.iter().map(|(cidr, _)| v4_block(cidr)).collect());
static V6_BLOCKS: LazyLock<Vec<Block<u128>>> =
    LazyLock::new(|| V6.iter().map(|(cidr, _)| v6_block(cidr)).collect());

fn in_block<T>(ip: T, (net, mask): Block<T>) -> bool
where
    T: std::ops::BitAnd<Output = T> + PartialEq + Copy,
{
    ip & mask == net & mask
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_BLOCKS.iter().any(|&b| in_block(v4.to_bits(), b)),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let bits = v6.to_bits();
            if in_block(bits, *NAT64) {
                // The low 32 bits are the IPv4 address.
                return is_public(IpAddr::V4(Ipv4Addr::from_bits(bits as u32)));
            }
            in_block(bits, *GLOBAL_UNICAST) && !V6_BLOCKS.iter().any(|&b| in_block(bits, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first and last address of every block of the tables are refused.
    #[test]
    fn every_block_of_the_tables_is_refused_from_end_to_end() {
        for (cidr, what) in V4 {
            let (net, mask) = v4_block(cidr);
            for ip in [net, net | !mask].map(Ipv4Addr::from_bits) {
                assert!(
                    !is_public(IpAddr::V4(ip)),
                    "{ip} ({what}) counted as public"
                );
            }
        }
        for (cidr, what) in V6 {
            let (net, mask) = v6_block(cidr);
            for ip in [net, net | !mask].map(Ipv6Addr::from_bits) {
                assert!(
                    !is_public(IpAddr::V6(ip)),
                    "{ip} ({what}) counted as public"
                );
            }
        }
    }

    #[test]
    fn nat64_and_mapped_addresses_are_judged_by_the_ipv4_address_inside() {
        for (v6, public) in [
            ("64:ff9b::808:808", true),
            ("64:ff9b::a00:1", false),
            ("64:ff9b::c612:1", false), // 198.18.0.1
            ("::ffff:8.8.8.8", true),
            ("::ffff:192.168.0.1", false),
        ] {
            assert_eq!(is_public(v6.parse().unwrap()), public, "{v6}");
        }
    }
}
