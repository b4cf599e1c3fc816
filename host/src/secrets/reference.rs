//! Where a client secret lives: the `secretReference` of a schedule (DESIGN §6).
//!
//! Only the shape is checked here (fields present, URLs well formed); whether
//! the secret exists is the provider's business at read time.

use crate::validation::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case")]
pub enum SecretReference {
    #[serde(rename_all = "camelCase")]
    AzureKeyVault {
        vault_uri: String,
        secret_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    AwsSecretsManager {
        region: String,
        secret_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_stage: Option<String>,
        /// When the secret string is a JSON object, the key that holds the client secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json_key: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    HashicorpVault {
        address: String,
        mount: String,
        path: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// Development: an environment variable of the host process.
    Env { name: String },
    /// Development: a file; the whole content (trailing newline trimmed), or one key of a JSON object.
    File {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl SecretReference {
    /// The provider's name as written in the reference.
    pub fn provider(&self) -> &'static str {
        match self {
            SecretReference::AzureKeyVault { .. } => "azure-key-vault",
            SecretReference::AwsSecretsManager { .. } => "aws-secrets-manager",
            SecretReference::HashicorpVault { .. } => "hashicorp-vault",
            SecretReference::Env { .. } => "env",
            SecretReference::File { .. } => "file",
        }
    }

    /// Parse and validate a `secretReference` JSON value. Field paths in the
    /// errors are relative to the reference (`vaultUri`, not `secretReference.vaultUri`).
    pub fn from_json(value: &serde_json::Value) -> Result<SecretReference, Vec<FieldError>> {
        let provider = value.get("provider").and_then(|p| p.as_str());
        let known = ["azure-key-vault", "aws-secrets-manager", "hashicorp-vault", "env", "file"];
        match provider {
            None => return Err(vec![FieldError::new("provider", format!("is required; one of {}", known.join(", ")))]),
            Some(p) if !known.contains(&p) => {
                return Err(vec![FieldError::new("provider", format!("`{p}` is not a secrets provider; one of {}", known.join(", ")))])
            }
            Some(_) => {}
        }
        let reference: SecretReference = serde_json::from_value(value.clone())
            .map_err(|e| vec![FieldError::new(missing_field(&e.to_string()).unwrap_or_default(), e.to_string())])?;
        reference.validate()?;
        Ok(reference)
    }

    /// Check the fields of an already parsed reference.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match self {
            SecretReference::AzureKeyVault { vault_uri, secret_name, version } => {
                non_empty(&mut errors, "secretName", secret_name);
                if let Some(v) = version {
                    non_empty(&mut errors, "version", v);
                    if !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                        errors.push(FieldError::new("version", "may hold only letters and digits (a Key Vault version id)"));
                    }
                }
                if !secret_name.is_empty() && !secret_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    errors.push(FieldError::new("secretName", "may hold only letters, digits and `-`"));
                }
                if let Err(message) = http_url(vault_uri, true) {
                    errors.push(FieldError::new("vaultUri", message));
                }
            }
            SecretReference::AwsSecretsManager { region, secret_id, version_stage, json_key } => {
                non_empty(&mut errors, "secretId", secret_id);
                if let Some(v) = version_stage {
                    non_empty(&mut errors, "versionStage", v);
                }
                if let Some(k) = json_key {
                    non_empty(&mut errors, "jsonKey", k);
                }
                if !region.is_empty() && !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                    errors.push(FieldError::new("region", format!("`{region}` is not an AWS region name")));
                }
                non_empty(&mut errors, "region", region);
            }
            SecretReference::HashicorpVault { address, mount, path, key, namespace } => {
                non_empty(&mut errors, "mount", mount);
                non_empty(&mut errors, "path", path);
                // `..` would walk out of the KV mount into other Vault APIs, with the host's token.
                for (field, value) in [("mount", mount), ("path", path)] {
                    if value.split('/').any(|s| s == "." || s == "..") {
                        errors.push(FieldError::new(field, "must not contain `.` or `..` segments"));
                    }
                }
                non_empty(&mut errors, "key", key);
                if let Some(ns) = namespace {
                    non_empty(&mut errors, "namespace", ns);
                }
                if let Err(message) = http_url(address, false) {
                    errors.push(FieldError::new("address", message));
                }
            }
            SecretReference::Env { name } => non_empty(&mut errors, "name", name),
            SecretReference::File { path, key } => {
                non_empty(&mut errors, "path", path);
                if let Some(k) = key {
                    non_empty(&mut errors, "key", k);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Names the secret without its value: for errors, logs and audit events.
impl fmt::Display for SecretReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretReference::AzureKeyVault { vault_uri, secret_name, version } => {
                write!(f, "azure-key-vault {}secrets/{secret_name}", with_slash(vault_uri))?;
                version.iter().try_for_each(|v| write!(f, "/{v}"))
            }
            SecretReference::AwsSecretsManager { region, secret_id, version_stage, json_key } => {
                write!(f, "aws-secrets-manager {region} `{secret_id}`")?;
                json_key.iter().try_for_each(|k| write!(f, "#{k}"))?;
                version_stage.iter().try_for_each(|v| write!(f, " ({v})"))
            }
            SecretReference::HashicorpVault { address, mount, path, key, .. } => {
                write!(f, "hashicorp-vault {}v1/{mount}/data/{path}#{key}", with_slash(address))
            }
            SecretReference::Env { name } => write!(f, "env `{name}`"),
            SecretReference::File { path, key } => {
                write!(f, "file `{path}`")?;
                key.iter().try_for_each(|k| write!(f, "#{k}"))
            }
        }
    }
}

fn non_empty(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    }
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// An absolute http(s) URL without credentials, query or fragment; with
/// `https_only`, plain http is still allowed to a loopback host.
fn http_url(value: &str, https_only: bool) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("`{value}` is not a URL: {e}"))?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => {}
        // Plain http only where it cannot cross a network: local emulators and dev stores.
        "http" if !https_only || loopback => {}
        "http" => return Err(format!("`{value}` must use https (plain http is allowed only to loopback)")),
        other => return Err(format!("`{value}` has scheme `{other}`; use https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{value}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{value}` must not have a query or fragment"));
    }
    Ok(())
}

/// serde names a missing field as "missing field `x`"; pull the name out for the field path.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seeds_reference_is_valid() {
        let r = SecretReference::from_json(&json!({
            "provider": "azure-key-vault",
            "vaultUri": "https://company-vault.vault.azure.net/",
            "secretName": "payroll-scheduler-client-secret"
        }))
        .expect("valid");
        assert_eq!(r.provider(), "azure-key-vault");
        assert_eq!(r.to_string(), "azure-key-vault https://company-vault.vault.azure.net/secrets/payroll-scheduler-client-secret");
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |v: serde_json::Value| SecretReference::from_json(&v).unwrap_err()[0].field.clone();
        assert_eq!(field(json!({"vaultUri": "x"})), "provider");
        assert_eq!(field(json!({"provider": "gcp"})), "provider");
        assert_eq!(field(json!({"provider": "azure-key-vault", "secretName": "s"})), "vaultUri");
        assert_eq!(field(json!({"provider": "azure-key-vault", "vaultUri": "http://v.vault.azure.net/", "secretName": "s"})), "vaultUri");
        assert_eq!(field(json!({"provider": "azure-key-vault", "vaultUri": "https://v/", "secretName": "a b"})), "secretName");
        assert_eq!(field(json!({"provider": "aws-secrets-manager", "region": "us-east-1", "secretId": ""})), "secretId");
        assert_eq!(field(json!({"provider": "aws-secrets-manager", "region": "US East", "secretId": "x"})), "region");
        assert_eq!(field(json!({"provider": "hashicorp-vault", "address": "http://127.0.0.1:8200", "mount": "secret", "path": "p"})), "key");
        assert_eq!(field(json!({"provider": "hashicorp-vault", "address": "http://127.0.0.1:8200", "mount": "secret", "path": "../../sys/raw", "key": "k"})), "path");
        assert_eq!(field(json!({"provider": "azure-key-vault", "vaultUri": "https://v/", "secretName": "s", "version": "../x"})), "version");
    }
}
