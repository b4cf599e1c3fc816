//! Which resolved addresses a node may reach.
//!
//! A name allowlist alone does not stop `allowed.example.com` from resolving
//! to 127.0.0.1 or the cloud metadata service, so every address is checked
//! after resolution and the connection goes to the checked address.

use std::net::{IpAddr, Ipv6Addr};

/// Why an address is refused, or `None` when it may be reached.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some("loopback address")
            } else if v4.is_link_local() {
                Some("link-local address (incl. cloud metadata 169.254.169.254)")
            } else if v4.is_unspecified() {
                Some("unspecified address")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("multicast or broadcast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.to_ipv4_mapped().is_some() {
                Some("ipv4-mapped ipv6 address")
            } else if v6.is_loopback() {
                Some("loopback address")
            } else if v6.is_unspecified() {
                Some("unspecified address")
            } else if v6.is_multicast() {
                Some("multicast address")
            } else if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local address")
            } else if v6 == AWS_METADATA_V6 {
                Some("cloud metadata address")
            } else {
                None
            }
        }
    }
}

/// AWS's IPv6 instance metadata endpoint `fd00:ec2::254`.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_ranges() {
        for ip in [
            "127.0.0.1", "127.8.9.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
            "fe80::1", "ff02::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        ] {
            assert!(refusal(ip.parse().unwrap()).is_some(), "{ip} should be refused");
        }
    }

    #[test]
    fn ordinary_addresses_pass() {
        for ip in ["93.184.216.34", "10.1.2.3", "2606:4700::1111"] {
            assert_eq!(refusal(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
