//! Egress grants: `scheme://host[:port]` allowlist entries and the auth each gets.
//!
//! `*` stands for a whole part (`*://api.example.com`, `https://*:8443`), and a
//! `*.` host prefix matches any subdomain (not the bare domain). Grants are
//! path-less: they name a destination, not a resource.

use std::fmt;
use std::net::IpAddr;

/// What credentials the host attaches for calls to a granted destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantAuth {
    /// The run's managed-identity token, optionally for a specific audience/scope.
    ManagedIdentity { audience: Option<String> },
    /// Nothing; the node may set its own `Authorization`.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Any,
    Exact(String),
    /// `*.example.com` → stores `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    source: String,
    scheme: Part,
    host: Part,
    port: Option<u16>,
    any_port: bool,
    pub auth: GrantAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("grant `{grant}`: {problem}")]
pub struct GrantError {
    pub grant: String,
    pub problem: String,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Grant {
    /// Parse a destination (`https://api.example.com`, `http://127.0.0.1:8080`, `https://*.corp`).
    pub fn parse(destination: &str, auth: GrantAuth) -> Result<Grant, GrantError> {
        let err = |problem: &str| GrantError { grant: destination.to_string(), problem: problem.to_string() };
        let (scheme, rest) = destination.split_once("://").ok_or_else(|| err("must look like scheme://host[:port]"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => Part::Any,
            s @ ("http" | "https") => Part::Exact(s.to_string()),
            _ => return Err(err("scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err("grants name a destination only: no path, query, fragment or user info"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| err("host is missing or malformed"))?;
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            Part::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(err("a host wildcard is `*` or a `*.` prefix"));
            }
            Part::Suffix(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(err("a host wildcard is `*` or a `*.` prefix"));
        } else {
            Part::Exact(host)
        };
        let (port, any_port) = match port {
            None => (None, false),
            Some("*") => (None, true),
            Some(p) => (Some(p.parse::<u16>().map_err(|_| err("port must be a number 1-65535 or *"))?), false),
        };
        if port == Some(0) {
            return Err(err("port must be a number 1-65535 or *"));
        }
        Ok(Grant { source: destination.to_string(), scheme, host, port, any_port, auth })
    }

    /// Parse the CLI form `URL[=managed-identity[:AUDIENCE]|none]`; no suffix means `none`.
    pub fn parse_spec(spec: &str) -> Result<Grant, GrantError> {
        // The URL itself contains `:` but never `=`, so split on the last `=`.
        let (url, auth) = match spec.rsplit_once('=') {
            Some((url, auth)) => (url, auth),
            None => (spec, "none"),
        };
        let auth = match auth.split_once(':') {
            _ if auth == "none" => GrantAuth::None,
            _ if auth == "managed-identity" => GrantAuth::ManagedIdentity { audience: None },
            Some(("managed-identity", aud)) if !aud.is_empty() => {
                GrantAuth::ManagedIdentity { audience: Some(aud.to_string()) }
            }
            _ => {
                return Err(GrantError {
                    grant: spec.to_string(),
                    problem: format!("auth `{auth}` must be `managed-identity`, `managed-identity:AUDIENCE` or `none`"),
                })
            }
        };
        Grant::parse(url, auth)
    }

    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match &self.scheme {
            Part::Any => true,
            Part::Exact(s) => s == scheme,
            Part::Suffix(_) => false,
        };
        let host_ok = match &self.host {
            Part::Any => true,
            Part::Exact(h) => h == host,
            Part::Suffix(s) => host.ends_with(s.as_str()) && host.len() > s.len(),
        };
        let port_ok = self.any_port || self.port.unwrap_or(default_port(scheme)) == port;
        scheme_ok && host_ok && port_ok
    }

    /// Whether the grant names this IP address literally (which lets it reach
    /// addresses that are otherwise refused, such as loopback).
    pub fn names_address(&self, ip: IpAddr) -> bool {
        match &self.host {
            Part::Exact(h) => parse_ip(h) == Some(ip),
            _ => false,
        }
    }

    /// Higher is more specific; the most specific matching grant decides the auth.
    pub fn specificity(&self) -> u8 {
        let host = match &self.host {
            Part::Exact(_) => 4,
            Part::Suffix(_) => 2,
            Part::Any => 0,
        };
        let scheme = u8::from(matches!(self.scheme, Part::Exact(_)));
        let port = u8::from(!self.any_port);
        host + scheme + port
    }
}

pub fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// Parse an IP literal as written in a URL host (IPv6 in brackets).
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.is_empty() {
        return None;
    }
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi() -> GrantAuth {
        GrantAuth::ManagedIdentity { audience: None }
    }

    #[test]
    fn exact_grant_matches_default_port_only() {
        let g = Grant::parse("https://api.example.com", mi()).unwrap();
        assert!(g.matches("https", "api.example.com", 443));
        assert!(!g.matches("https", "api.example.com", 8443));
        assert!(!g.matches("http", "api.example.com", 80));
        assert!(!g.matches("https", "evil-api.example.com", 443));
    }

    #[test]
    fn subdomain_wildcard_excludes_bare_domain() {
        let g = Grant::parse("https://*.example.com", GrantAuth::None).unwrap();
        assert!(g.matches("https", "a.b.example.com", 443));
        assert!(!g.matches("https", "example.com", 443));
        assert!(!g.matches("https", "badexample.com", 443));
    }

    #[test]
    fn wildcards_per_part() {
        let g = Grant::parse("*://*:*", GrantAuth::None).unwrap();
        assert!(g.matches("http", "169.254.169.254", 80));
        let g = Grant::parse("http://127.0.0.1:*", GrantAuth::None).unwrap();
        assert!(g.matches("http", "127.0.0.1", 41234));
        assert!(g.names_address("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_grants_name_the_problem() {
        for (g, needle) in [
            ("api.example.com", "scheme://host"),
            ("ftp://x", "scheme must be"),
            ("https://x/path", "no path"),
            ("https://a*.x", "wildcard"),
            ("https://x:99999", "port"),
        ] {
            let e = Grant::parse(g, GrantAuth::None).unwrap_err();
            assert!(e.to_string().contains(needle), "{g}: {e}");
            assert!(e.to_string().contains(g), "{g}: {e}");
        }
    }

    #[test]
    fn cli_spec_forms() {
        assert_eq!(Grant::parse_spec("http://127.0.0.1:9=none").unwrap().auth, GrantAuth::None);
        assert_eq!(Grant::parse_spec("http://127.0.0.1:9").unwrap().auth, GrantAuth::None);
        assert_eq!(Grant::parse_spec("https://x=managed-identity").unwrap().auth, mi());
        assert_eq!(
            Grant::parse_spec("https://x=managed-identity:api://payroll").unwrap().auth,
            GrantAuth::ManagedIdentity { audience: Some("api://payroll".into()) }
        );
        assert!(Grant::parse_spec("https://x=bearer").is_err());
    }

    #[test]
    fn ipv6_literals() {
        let g = Grant::parse("http://[::1]:8080", GrantAuth::None).unwrap();
        assert!(g.matches("http", "[::1]", 8080));
        assert!(g.names_address("::1".parse().unwrap()));
    }
}
