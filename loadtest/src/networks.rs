//! Where varied visitors come from: client networks, either the CIDR ranges a
//! suite gives or a generated set of public-looking IPv4 /24s and IPv6 /48s
//! (the same on every run). Each request gets an address from a random
//! network, written into `X-Forwarded-For`; `geoip.rs` writes a database
//! that places every network in a country.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use rand::Rng;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde::{Serialize, Serializer};

/// IPv4 /24s and IPv6 /48s of the generated set (as many networks as the
/// criterion benchmark's GeoIP database, benches/src/traffic.rs).
pub const GENERATED_IPV4: usize = 50_000;
pub const GENERATED_IPV6: usize = 10_000;
/// Most networks a suite may list.
pub const MAX_GIVEN: usize = 1_000_000;

/// One client network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Network {
    V4 { base: u32, prefix: u8 },
    V6 { base: u128, prefix: u8 },
}

impl Network {
    /// A network in CIDR form, or a single address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let net: ipnet::IpNet = match text.parse() {
            Ok(net) => net,
            Err(_) => match text.parse::<std::net::IpAddr>() {
                Ok(addr) => addr.into(),
                Err(_) => {
                    return Err(format!(
                        "{text:?} is not a network such as 203.0.113.0/24 or 2a01:4f8::/32"
                    ));
                }
            },
        };
        Ok(match net.trunc() {
            ipnet::IpNet::V4(v4) => Self::V4 {
                base: u32::from(v4.addr()),
                prefix: v4.prefix_len(),
            },
            ipnet::IpNet::V6(v6) => Self::V6 {
                base: u128::from(v6.addr()),
                prefix: v6.prefix_len(),
            },
        })
    }

    /// The network as `ipnet` has it.
    pub fn to_ipnet(self) -> ipnet::IpNet {
        match self {
            Self::V4 { base, prefix } => ipnet::Ipv4Net::new(Ipv4Addr::from(base), prefix)
                .expect("a valid prefix")
                .into(),
            Self::V6 { base, prefix } => ipnet::Ipv6Net::new(Ipv6Addr::from(base), prefix)
                .expect("a valid prefix")
                .into(),
        }
    }
}

/// The networks client addresses are drawn from, packed small: every
/// request reads one at random, and the generated set must stay in the
/// generator core's L2 cache (570 KB instead of 1.9 MB as `Network`s).
pub struct ClientNetworks {
    /// The suite's list; `None` for the generated set.
    given: Option<Vec<String>>,
    /// IPv4 networks as base << 8 | prefix length.
    v4: Vec<u64>,
    /// IPv6 network bases, and their prefix lengths.
    v6: Vec<u128>,
    v6_prefixes: Vec<u8>,
}

impl std::fmt::Debug for ClientNetworks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientNetworks")
            .field("given", &self.given.as_ref().map(Vec::len))
            .field("v4", &self.v4.len())
            .field("v6", &self.v6.len())
            .finish()
    }
}

impl PartialEq for ClientNetworks {
    fn eq(&self, other: &Self) -> bool {
        self.given == other.given
    }
}

impl Serialize for ClientNetworks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.given {
            Some(list) => list.serialize(serializer),
            None => serializer.serialize_str("generated"),
        }
    }
}

impl ClientNetworks {
    /// The generated set, built once per process.
    pub fn generated() -> Arc<Self> {
        static GENERATED: OnceLock<Arc<ClientNetworks>> = OnceLock::new();
        GENERATED
            .get_or_init(|| Arc::new(Self::from_networks(None, generate())))
            .clone()
    }

    /// Networks from a suite's list (CIDR ranges or addresses).
    pub fn given(list: &[String]) -> Result<Self, String> {
        if list.is_empty() || list.len() > MAX_GIVEN {
            return Err(format!("give 1 to {MAX_GIVEN} networks"));
        }
        let networks = list
            .iter()
            .map(|text| Network::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_networks(Some(list.to_vec()), networks))
    }

    fn from_networks(given: Option<Vec<String>>, networks: Vec<Network>) -> Self {
        let mut packed = Self {
            given,
            v4: Vec::new(),
            v6: Vec::new(),
            v6_prefixes: Vec::new(),
        };
        for network in networks {
            match network {
                Network::V4 { base, prefix } => {
                    packed.v4.push(u64::from(base) << 8 | u64::from(prefix));
                }
                Network::V6 { base, prefix } => {
                    packed.v6.push(base);
                    packed.v6_prefixes.push(prefix);
                }
            }
        }
        packed
    }

    /// The suite's list; `None` for the generated set.
    pub fn given_list(&self) -> Option<&[String]> {
        self.given.as_deref()
    }

    /// Number of networks.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Never true: there is at least one network.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every network, IPv4 first.
    pub fn networks(&self) -> impl Iterator<Item = Network> + '_ {
        let v4 = self.v4.iter().map(|&packed| Network::V4 {
            base: (packed >> 8) as u32,
            prefix: packed as u8,
        });
        let v6 = self
            .v6
            .iter()
            .zip(&self.v6_prefixes)
            .map(|(&base, &prefix)| Network::V6 { base, prefix });
        v4.chain(v6)
    }

    /// Appends a random address of a random network (every network equally
    /// likely).
    #[inline]
    pub fn write_address(&self, rng: &mut SmallRng, out: &mut Vec<u8>) {
        let index = rng.random_range(0..self.len());
        let network = match self.v4.get(index) {
            Some(&packed) => Network::V4 {
                base: (packed >> 8) as u32,
                prefix: packed as u8,
            },
            None => {
                let at = index - self.v4.len();
                Network::V6 {
                    base: self.v6[at],
                    prefix: self.v6_prefixes[at],
                }
            }
        };
        match network {
            Network::V4 { base, prefix } => {
                let host_bits = 32 - u32::from(prefix);
                let host = match host_bits {
                    0 => 0,
                    // Neither the network's nor its broadcast address.
                    2.. => 1 + rng.random_range(0..(1u64 << host_bits) - 2) as u32,
                    _ => rng.next_u32() & 1,
                };
                write_ipv4(base | host, out);
            }
            Network::V6 { base, prefix } => {
                let host_bits = 128 - u32::from(prefix);
                let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
                let host = match host_bits {
                    0 => 0,
                    bits => random & (u128::MAX >> (128 - bits)),
                };
                write_ipv6(base | host, out);
            }
        }
    }
}

/// Public-looking /24s (no private, loopback, link-local, shared,
/// documentation, benchmarking or multicast space) and /48s in RIRs'
/// global unicast blocks, from a fixed seed.
fn generate() -> Vec<Network> {
    let mut rng = SmallRng::seed_from_u64(0x5EED_CAFE);
    let mut v4 = std::collections::BTreeSet::new();
    while v4.len() < GENERATED_IPV4 {
        let base = rng.next_u32() & 0xFFFF_FF00;
        if is_public_v4(base) {
            v4.insert(base);
        }
    }
    const V6_BLOCKS: [u128; 7] = [0x2400, 0x2600, 0x2800, 0x2a00, 0x2a01, 0x2a02, 0x2c0f];
    let mut v6 = std::collections::BTreeSet::new();
    while v6.len() < GENERATED_IPV6 {
        let top = V6_BLOCKS[rng.random_range(0..V6_BLOCKS.len())];
        let middle = u128::from(rng.next_u32());
        v6.insert((top << 112) | (middle << 80));
    }
    v4.into_iter()
        .map(|base| Network::V4 { base, prefix: 24 })
        .chain(v6.into_iter().map(|base| Network::V6 { base, prefix: 48 }))
        .collect()
}

fn is_public_v4(address: u32) -> bool {
    let [a, b, c, _] = address.to_be_bytes();
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113))
}

/// Dotted decimal, without the formatting machinery.
#[inline]
pub fn write_ipv4(address: u32, out: &mut Vec<u8>) {
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in address.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    out.extend_from_slice(&text[..len]);
}

/// Eight groups of lowercase hex without leading zeros (valid, if not the
/// shortest form).
#[inline]
pub fn write_ipv6(address: u128, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 39];
    let mut len = 0;
    for group in 0..8 {
        if group > 0 {
            text[len] = b':';
            len += 1;
        }
        let value = (address >> (112 - 16 * group)) as u16;
        // Digits after the leading zeros (at least one).
        let digits = (4 - value.leading_zeros() as usize / 4).max(1);
        for digit in (0..digits).rev() {
            text[len] = HEX[usize::from((value >> (4 * digit)) & 0xF)];
            len += 1;
        }
    }
    out.extend_from_slice(&text[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn addresses_stay_in_their_networks() {
        let networks = ClientNetworks::given(&[
            "203.0.113.0/24".into(),
            "198.51.100.7".into(),
            "2a01:4f8::/32".into(),
            "192.0.2.0/31".into(),
        ])
        .unwrap();
        let nets: Vec<ipnet::IpNet> = networks.networks().map(Network::to_ipnet).collect();
        let mut rng = SmallRng::seed_from_u64(3);
        let mut out = Vec::new();
        for _ in 0..2000 {
            out.clear();
            networks.write_address(&mut rng, &mut out);
            let text = std::str::from_utf8(&out).unwrap();
            let address: IpAddr = text.parse().unwrap_or_else(|_| panic!("{text}"));
            assert_eq!(address.to_string().parse::<IpAddr>().unwrap(), address);
            assert!(nets.iter().any(|n| n.contains(&address)), "{text}");
            if let IpAddr::V4(v4) = address
                && nets[0].contains(&address)
            {
                assert!(!matches!(v4.octets()[3], 0 | 255), "{text}");
            }
        }
        assert!(ClientNetworks::given(&["10.0.0.0/33".into()]).is_err());
        assert!(ClientNetworks::given(&[]).is_err());
    }

    #[test]
    fn the_generated_set_is_public_and_mixed() {
        let set = ClientNetworks::generated();
        assert_eq!(set.len(), GENERATED_IPV4 + GENERATED_IPV6);
        let v6 = set
            .networks()
            .filter(|n| matches!(n, Network::V6 { .. }))
            .count();
        assert_eq!(v6, GENERATED_IPV6);
        for network in set.networks() {
            if let Network::V4 { base, .. } = network {
                let addr = Ipv4Addr::from(base);
                assert!(
                    !addr.is_private() && !addr.is_loopback() && !addr.is_documentation(),
                    "{addr}"
                );
            }
        }
        assert!(Arc::ptr_eq(&set, &ClientNetworks::generated()));
    }

    #[test]
    fn formats() {
        let mut out = Vec::new();
        write_ipv4(u32::from(Ipv4Addr::new(1, 20, 255, 0)), &mut out);
        assert_eq!(out, b"1.20.255.0");
        out.clear();
        write_ipv6(
            u128::from("2a00:0:10:abc::1".parse::<Ipv6Addr>().unwrap()),
            &mut out,
        );
        assert_eq!(out, b"2a00:0:10:abc:0:0:0:1");
    }
}
