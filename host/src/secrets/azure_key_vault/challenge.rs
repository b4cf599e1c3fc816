//! Key Vault's 401 challenge: `WWW-Authenticate: Bearer authorization="…/{tenant}",
//! resource="…"` (or `scope="…/.default"`), and the check that the resource
//! belongs to the vault that sent it, so a look-alike server cannot make the
//! host fetch a token for someone else's resource.

/// What a vault asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The resource (audience) the token must be for, without `/.default`.
    pub resource: String,
    /// The tenant named by `authorization`, when there is one.
    pub tenant: Option<String>,
}

impl Challenge {
    /// The scope to ask Entra for.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.resource.trim_end_matches('/'))
    }
}

/// Parse a `WWW-Authenticate` value; `None` when it is not a Bearer challenge with a resource.
pub(crate) fn parse(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut resource = None;
    let mut scope = None;
    let mut authorization = None;
    for (name, value) in params_of(params) {
        match name.to_ascii_lowercase().as_str() {
            "resource" => resource = Some(value),
            "scope" => scope = Some(value),
            "authorization" | "authorization_uri" => authorization = Some(value),
            _ => {}
        }
    }
    let resource = resource.or_else(|| scope.map(|s| s.trim_end_matches("/.default").to_string()))?;
    if resource.trim().is_empty() {
        return None;
    }
    let tenant = authorization
        .and_then(|a| url::Url::parse(&a).ok())
        .and_then(|u| u.path_segments().and_then(|mut s| s.find(|p| !p.is_empty()).map(str::to_string)));
    Some(Challenge { resource, tenant })
}

/// `name="value", name=value` pairs.
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            },
            None => match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            },
        };
        out.push((name, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Whether `resource`'s host is the vault's host or a parent domain of it
/// (`vault.azure.net` for `company.vault.azure.net`).
pub(crate) fn matches_vault(resource: &str, vault: &url::Url) -> bool {
    let Some(resource_host) = url::Url::parse(resource).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)) else {
        return false;
    };
    let Some(vault_host) = vault.host_str().map(str::to_ascii_lowercase) else { return false };
    // A parent domain must be a real domain, not a bare TLD like `net`.
    vault_host == resource_host || (resource_host.contains('.') && vault_host.ends_with(&format!(".{resource_host}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_challenge_is_read() {
        let c = parse(r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1", resource="https://vault.azure.net""#).expect("challenge");
        assert_eq!(c.resource, "https://vault.azure.net");
        assert_eq!(c.tenant.as_deref(), Some("72f988bf-86f1"));
        assert_eq!(c.scope(), "https://vault.azure.net/.default");
        let scoped = parse(r#"Bearer authorization_uri="https://login.windows.net/t1",scope="https://vault.azure.net/.default""#).expect("challenge");
        assert_eq!(scoped.resource, "https://vault.azure.net");
        assert_eq!(scoped.tenant.as_deref(), Some("t1"));
        assert_eq!(parse(r#"Basic realm="x""#), None);
        assert_eq!(parse(r#"Bearer authorization="https://login.microsoftonline.com/t""#), None);
    }

    #[test]
    fn only_the_vaults_own_domain_is_accepted() {
        let vault = url::Url::parse("https://company-vault.vault.azure.net/").expect("url");
        assert!(matches_vault("https://vault.azure.net", &vault));
        assert!(matches_vault("https://company-vault.vault.azure.net/", &vault));
        assert!(!matches_vault("https://evil.example", &vault));
        assert!(!matches_vault("https://azure.net.evil.example", &vault));
        assert!(!matches_vault("https://ault.azure.net", &vault), "a suffix must start at a dot");
        assert!(!matches_vault("not a url", &vault));
        assert!(!matches_vault("https://net", &vault));
    }
}
