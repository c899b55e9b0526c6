//! Which IP addresses are public: [`classify`] names the special-purpose range
//! (IANA's IPv4 and IPv6 special-purpose registries) an address falls in, or
//! `None` for public unicast. IPv4 addresses carried inside IPv6 (mapped,
//! NAT64, 6to4) are classified as the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A range that is not the public internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonPublic {
    /// `0.0.0.0/8` ("this network"; connecting to `0.0.0.0` reaches the host
    /// itself) and `::`.
    Unspecified,
    /// `127.0.0.0/8` and `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16` (where cloud metadata services answer, such as
    /// `169.254.169.254`) and `fe80::/10`.
    LinkLocal,
    /// `fc00::/7` (RFC 4193).
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local.
    SiteLocal,
    /// `192.0.0.0/24` and `2001::/23` (Teredo included).
    ProtocolAssignments,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`.
    Benchmarking,
    /// `192.88.99.0/24`, the deprecated 6to4 relay anycast.
    Relay6to4,
    /// `224.0.0.0/4` and `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, reserved for future use.
    FutureUse,
    /// `::/96`, deprecated IPv4-compatible IPv6.
    Ipv4Compatible,
    /// `64:ff9b:1::/48`, local-use NAT64.
    LocalNat64,
    /// `100::/64`, discard-only.
    DiscardOnly,
    /// `5f00::/16`, SRv6 segment identifiers.
    SegmentRouting,
    /// IPv6 outside `2000::/3`, the only global unicast space assigned.
    Unassigned,
}

impl NonPublic {
    /// Ranges an operator's "allow private targets" opens: the host itself
    /// and the networks an organisation numbers its own machines in. Never
    /// link-local (cloud metadata), unspecified, multicast or reserved space.
    pub fn is_private_use(self) -> bool {
        matches!(
            self,
            Self::Loopback
                | Self::Private
                | Self::SharedAddressSpace
                | Self::UniqueLocal
                | Self::SiteLocal
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private (RFC 1918)",
            Self::SharedAddressSpace => "shared address space (carrier-grade NAT)",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique local",
            Self::SiteLocal => "site-local",
            Self::ProtocolAssignments => "reserved for protocol assignments",
            Self::Documentation => "reserved for documentation",
            Self::Benchmarking => "reserved for benchmarking",
            Self::Relay6to4 => "a 6to4 relay",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::FutureUse => "reserved for future use",
            Self::Ipv4Compatible => "IPv4-compatible IPv6",
            Self::LocalNat64 => "local-use NAT64",
            Self::DiscardOnly => "discard-only",
            Self::SegmentRouting => "SRv6 segment identifiers",
            Self::Unassigned => "outside global unicast",
        }
    }
}

impl fmt::Display for NonPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// IPv4 special-purpose ranges: network, prefix length, what it is. The
/// broadcast address comes before the `240.0.0.0/4` that holds it.
const IPV4_RANGES: &[([u8; 4], u8, NonPublic)] = &[
    ([0, 0, 0, 0], 8, NonPublic::Unspecified),
    ([10, 0, 0, 0], 8, NonPublic::Private),
    ([100, 64, 0, 0], 10, NonPublic::SharedAddressSpace),
    ([127, 0, 0, 0], 8, NonPublic::Loopback),
    ([169, 254, 0, 0], 16, NonPublic::LinkLocal),
    ([172, 16, 0, 0], 12, NonPublic::Private),
    ([192, 0, 0, 0], 24, NonPublic::ProtocolAssignments),
    ([192, 0, 2, 0], 24, NonPublic::Documentation),
    ([192, 88, 99, 0], 24, NonPublic::Relay6to4),
    ([192, 168, 0, 0], 16, NonPublic::Private),
    ([198, 18, 0, 0], 15, NonPublic::Benchmarking),
    ([198, 51, 100, 0], 24, NonPublic::Documentation),
    ([203, 0, 113, 0], 24, NonPublic::Documentation),
    ([224, 0, 0, 0], 4, NonPublic::Multicast),
    ([255, 255, 255, 255], 32, NonPublic::Broadcast),
    ([240, 0, 0, 0], 4, NonPublic::FutureUse),
];

/// IPv6 special-purpose ranges, checked after the forms that carry IPv4.
const IPV6_RANGES: &[([u16; 8], u8, NonPublic)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, NonPublic::Unspecified),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, NonPublic::Loopback),
    ([0, 0, 0, 0, 0, 0, 0, 0], 96, NonPublic::Ipv4Compatible),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, NonPublic::LocalNat64),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, NonPublic::DiscardOnly),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        NonPublic::ProtocolAssignments,
    ),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        NonPublic::Documentation,
    ),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, NonPublic::Documentation),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, NonPublic::SegmentRouting),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, NonPublic::UniqueLocal),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, NonPublic::LinkLocal),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, NonPublic::SiteLocal),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, NonPublic::Multicast),
];

/// The range `address` is in, or `None` when it is public unicast.
pub fn classify(address: IpAddr) -> Option<NonPublic> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `address` is public unicast.
pub fn is_public(address: IpAddr) -> bool {
    classify(address).is_none()
}

fn classify_v4(address: Ipv4Addr) -> Option<NonPublic> {
    let bits = u32::from(address);
    IPV4_RANGES
        .iter()
        .find(|(network, length, _)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(*length)).unwrap_or(0);
            bits & mask == u32::from_be_bytes(*network)
        })
        .map(|(_, _, range)| *range)
}

fn classify_v6(address: Ipv6Addr) -> Option<NonPublic> {
    if let Some(carried) = carried_ipv4(address) {
        return classify_v4(carried);
    }
    let bits = u128::from(address);
    let listed = IPV6_RANGES
        .iter()
        .find(|(network, length, _)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(*length)).unwrap_or(0);
            bits & mask == u128::from(Ipv6Addr::from(*network))
        })
        .map(|(_, _, range)| *range);
    // Global unicast is 2000::/3; nothing else is assigned for public use.
    listed.or_else(|| (address.segments()[0] & 0xe000 != 0x2000).then_some(NonPublic::Unassigned))
}

/// The IPv4 address an IPv6 address stands for, where a connection to it
/// ends at that IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`), the NAT64
/// well-known prefix (`64:ff9b::/96`), and 6to4 (`2002:aabb:ccdd::/48`).
fn carried_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    let segments = address.segments();
    let octets = address.octets();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        ));
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Option<NonPublic> {
        classify(text.parse().unwrap())
    }

    #[test]
    fn every_ipv4_range_is_named_at_its_edges() {
        use NonPublic::*;
        for (first, last, range) in [
            ("0.0.0.0", "0.255.255.255", Unspecified),
            ("10.0.0.0", "10.255.255.255", Private),
            ("100.64.0.0", "100.127.255.255", SharedAddressSpace),
            ("127.0.0.0", "127.255.255.255", Loopback),
            ("169.254.0.0", "169.254.255.255", LinkLocal),
            ("172.16.0.0", "172.31.255.255", Private),
            ("192.0.0.0", "192.0.0.255", ProtocolAssignments),
            ("192.0.2.0", "192.0.2.255", Documentation),
            ("192.88.99.0", "192.88.99.255", Relay6to4),
            ("192.168.0.0", "192.168.255.255", Private),
            ("198.18.0.0", "198.19.255.255", Benchmarking),
            ("198.51.100.0", "198.51.100.255", Documentation),
            ("203.0.113.0", "203.0.113.255", Documentation),
            ("224.0.0.0", "239.255.255.255", Multicast),
            ("240.0.0.0", "255.255.255.254", FutureUse),
            ("255.255.255.255", "255.255.255.255", Broadcast),
        ] {
            assert_eq!(of(first), Some(range), "{first}");
            assert_eq!(of(last), Some(range), "{last}");
        }
        assert_eq!(of("169.254.169.254"), Some(LinkLocal), "cloud metadata");
        assert_eq!(of("127.0.0.1"), Some(Loopback));
    }

    #[test]
    fn addresses_just_outside_each_ipv4_range_are_public() {
        for public in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "8.8.8.8",
            "93.184.216.34",
        ] {
            assert_eq!(of(public), None, "{public}");
            assert!(is_public(public.parse().unwrap()));
        }
    }

    #[test]
    fn every_ipv6_range_is_named() {
        use NonPublic::*;
        for (address, range) in [
            ("::", Unspecified),
            ("::1", Loopback),
            ("::2", Ipv4Compatible),
            ("::a9fe:a9fe", Ipv4Compatible),
            ("64:ff9b:1::1", LocalNat64),
            ("100::1", DiscardOnly),
            ("100::ffff:ffff:ffff:ffff", DiscardOnly),
            ("2001::1", ProtocolAssignments),
            ("2001:1ff:ffff::1", ProtocolAssignments),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("3fff:fff:ffff::1", Documentation),
            ("5f00::1", SegmentRouting),
            ("fc00::1", UniqueLocal),
            ("fd00:ec2::254", UniqueLocal),
            ("fdff:ffff::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("fec0::1", SiteLocal),
            ("feff::1", SiteLocal),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("1::1", Unassigned),
            ("4000::1", Unassigned),
            ("e000::1", Unassigned),
        ] {
            assert_eq!(of(address), Some(range), "{address}");
        }
        for public in [
            "2001:200::1",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "3ffe::1",
            "2002:808:808::1",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(of(public), None, "{public}");
        }
    }

    #[test]
    fn ipv4_carried_in_ipv6_is_classified_as_that_ipv4() {
        use NonPublic::*;
        for (address, range) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:a9fe:a9fe", LinkLocal),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:224.0.0.1", Multicast),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::c0a8:1", Private),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::1", LinkLocal),
            ("2002:c0a8:101::", Private),
        ] {
            assert_eq!(of(address), Some(range), "{address}");
        }
    }

    #[test]
    fn only_private_use_ranges_open_to_allow_private() {
        use NonPublic::*;
        for open in [
            Loopback,
            Private,
            SharedAddressSpace,
            UniqueLocal,
            SiteLocal,
        ] {
            assert!(open.is_private_use(), "{open:?}");
        }
        for closed in [
            Unspecified,
            LinkLocal,
            ProtocolAssignments,
            Documentation,
            Benchmarking,
            Relay6to4,
            Multicast,
            Broadcast,
            FutureUse,
            Ipv4Compatible,
            LocalNat64,
            DiscardOnly,
            SegmentRouting,
            Unassigned,
        ] {
            assert!(!closed.is_private_use(), "{closed:?}");
            assert!(!closed.to_string().is_empty());
        }
    }
}
