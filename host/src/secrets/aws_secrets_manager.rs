//! The `aws-secrets-manager` provider: `GetSecretValue` over the JSON 1.1
//! protocol (`POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`), signed
//! with SigV4 for service `secretsmanager` in the reference's region.
//!
//! Errors are told apart by their AWS error code (`__type`, else the
//! `x-amzn-ErrorType` header, else an XML `<Code>`), never by the HTTP status
//! alone: AWS answers 400 for both "not found" and "throttled".

use super::config::{self, AwsSecretsManagerConfig};
use super::extract::{json_key, KeyProblem};
use super::http::{self, Answer};
use super::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use crate::secret::Secret;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use base64::Engine;
use futures::future::BoxFuture;
use std::time::{Duration, SystemTime};

const PROVIDER: &str = "aws-secrets-manager";

/// The host's AWS credentials, resolved once when the provider is built.
#[derive(Debug, Clone)]
struct Credentials {
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

#[derive(Debug)]
pub struct AwsSecretsManagerProvider {
    credentials: Result<Credentials, String>,
    endpoint: Option<url::Url>,
    client: Result<reqwest::Client, SecretError>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueAnswer {
    secret_string: Option<Secret>,
    /// Base64 of the bytes.
    secret_binary: Option<Secret>,
    version_id: Option<String>,
}

impl AwsSecretsManagerProvider {
    /// Credentials from `config`, else from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
    pub fn new(config: Option<&AwsSecretsManagerConfig>) -> AwsSecretsManagerProvider {
        AwsSecretsManagerProvider::with_env(config, |name| std::env::var(name).ok())
    }

    /// As [`new`](Self::new), reading the environment through `env` (tests that run in parallel).
    pub fn with_env(config: Option<&AwsSecretsManagerConfig>, env: impl Fn(&str) -> Option<String>) -> AwsSecretsManagerProvider {
        let defaults = AwsSecretsManagerConfig::default();
        let config = config.unwrap_or(&defaults);
        let credentials = match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(key)) => Ok(Credentials { access_key_id: id.clone(), secret_access_key: key.clone(), session_token: config.session_token.clone() }),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(key)) if !id.is_empty() && !key.is_empty() => Ok(Credentials {
                    access_key_id: id,
                    secret_access_key: Secret::new(key),
                    session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()).map(Secret::new),
                }),
                _ => Err("no AWS credentials: set `access-key-id` and `secret-access-key` in [secrets.aws-secrets-manager], \
                          or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the host's environment"
                    .to_string()),
            },
        };
        let endpoint = config.endpoint.as_deref().map(config::endpoint);
        let (endpoint, client) = match endpoint {
            Some(Err(message)) => (None, Err(SecretError::NotConfigured { provider: PROVIDER.into(), reason: format!("endpoint: {message}") })),
            Some(Ok(url)) => (Some(url), http::client(PROVIDER, Duration::from_secs(config.timeout_seconds))),
            None => (None, http::client(PROVIDER, Duration::from_secs(config.timeout_seconds))),
        };
        AwsSecretsManagerProvider { credentials, endpoint, client }
    }

    async fn read_now(&self, reference: &SecretReference) -> Result<SecretValue, SecretError> {
        let SecretReference::AwsSecretsManager { region, secret_id, version_stage, json_key: key } = reference else {
            return Err(SecretError::NotConfigured { provider: PROVIDER.into(), reason: format!("asked to read {reference}") });
        };
        let named = reference.to_string();
        let not_configured = |reason: String| SecretError::NotConfigured { provider: PROVIDER.into(), reason };
        let credentials = self.credentials.as_ref().map_err(|reason| not_configured(reason.clone()))?;
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let url = match &self.endpoint {
            Some(url) => url.clone(),
            None => url::Url::parse(&format!("https://secretsmanager.{region}.amazonaws.com/")).map_err(|e| not_configured(format!("region `{region}`: {e}")))?,
        };
        let mut body = serde_json::json!({ "SecretId": secret_id });
        if let Some(stage) = version_stage {
            body["VersionStage"] = serde_json::Value::String(stage.clone());
        }
        let body = body.to_string();
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "secretsmanager.GetSecretValue")];
        let signed = signature_headers(credentials, region, &url, &headers, body.as_bytes()).map_err(|reason| SecretError::Invalid { reference: named.clone(), reason })?;
        let mut request = client.post(url.clone()).body(body);
        for (name, value) in headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).chain(signed) {
            request = request.header(name, value);
        }
        let answer = http::send(request, &named).await?;
        if answer.is_redirect() {
            return Err(http::redirect_error(&named, &url, &answer));
        }
        if answer.status != 200 {
            return Err(classify_error(&named, &answer));
        }
        let parsed: GetSecretValueAnswer = answer.json().ok_or_else(|| SecretError::Invalid { reference: named.clone(), reason: "the answer is not a GetSecretValue result".into() })?;
        let text = match (parsed.secret_string, parsed.secret_binary) {
            (Some(text), _) => text,
            (None, Some(encoded)) => {
                let bytes = zeroize::Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded.expose())
                        .map_err(|_| SecretError::Invalid { reference: named.clone(), reason: "`SecretBinary` is not base64".into() })?,
                );
                let text = std::str::from_utf8(&bytes).map_err(|_| SecretError::Invalid { reference: named.clone(), reason: "`SecretBinary` is not UTF-8 text".into() })?;
                Secret::new(text)
            }
            (None, None) => return Err(SecretError::Invalid { reference: named, reason: "the answer has neither `SecretString` nor `SecretBinary`".into() }),
        };
        let value = match key {
            None => text,
            Some(key) => json_key(text.expose(), key).map_err(|problem| match problem {
                KeyProblem::Missing => SecretError::NotFound { reference: named.clone() },
                other => SecretError::Invalid { reference: named.clone(), reason: other.describe(key) },
            })?,
        };
        if value.expose().is_empty() {
            return Err(SecretError::Invalid { reference: named, reason: "the secret is empty".into() });
        }
        Ok(SecretValue { value, version: parsed.version_id })
    }
}

impl SecretsProvider for AwsSecretsManagerProvider {
    fn read<'a>(&'a self, reference: &'a SecretReference, _freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(self.read_now(reference))
    }
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`) for one request.
fn signature_headers(credentials: &Credentials, region: &str, url: &url::Url, headers: &[(&str, &str)], body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "flowstudio-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("secretsmanager")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("sigv4 parameters: {e}"))?
        .into();
    let signable = SignableRequest::new("POST", url.as_str(), headers.iter().copied(), SignableBody::Bytes(body)).map_err(|e| format!("sigv4: {e}"))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| format!("sigv4: {e}"))?.into_parts();
    Ok(instructions.headers().map(|(name, value)| (name.to_string(), value.to_string())).collect())
}

/// The AWS error code of a failed answer, without a `namespace#` prefix or a `:uri` suffix.
fn error_code(answer: &Answer) -> Option<String> {
    let from_body = answer.json::<serde_json::Value>().and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_string));
    let from_header = || answer.header("x-amzn-errortype").map(str::to_string);
    let from_xml = || {
        let text = std::str::from_utf8(&answer.body).ok()?;
        let start = text.find("<Code>")? + "<Code>".len();
        let end = text[start..].find("</Code>")? + start;
        Some(text[start..end].to_string())
    };
    let raw = from_body.or_else(from_header).or_else(from_xml)?;
    let code = raw.rsplit('#').next().unwrap_or(&raw);
    let code = code.split(':').next().unwrap_or(code);
    Some(code.trim().to_string()).filter(|c| !c.is_empty())
}

fn error_message(answer: &Answer) -> Option<String> {
    if let Some(body) = answer.json::<serde_json::Value>() {
        let message = body.get("message").or_else(|| body.get("Message"))?.as_str()?;
        return Some(http::short(message));
    }
    // Some endpoints (and moto's auth checks) answer the query protocol's XML.
    let text = std::str::from_utf8(&answer.body).ok()?;
    let start = text.find("<Message>")? + "<Message>".len();
    let end = text[start..].find("</Message>")? + start;
    Some(http::short(&text[start..end]))
}

fn classify_error(named: &str, answer: &Answer) -> SecretError {
    let reference = named.to_string();
    let Some(code) = error_code(answer) else {
        let reason = format!("the store answered {} without an error code", answer.status);
        return if http::is_transient_status(answer.status) {
            SecretError::Unavailable { reference, reason }
        } else {
            SecretError::Invalid { reference, reason }
        };
    };
    let reason = match error_message(answer) {
        Some(message) => format!("{code}: {message}"),
        None => code.clone(),
    };
    match code.as_str() {
        "ResourceNotFoundException" => SecretError::NotFound { reference },
        "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException"
        | "SignatureDoesNotMatch" | "IncompleteSignature" | "MissingAuthenticationToken" | "ExpiredTokenException" | "ExpiredToken" => {
            SecretError::AccessDenied { reference, reason }
        }
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" | "InternalServiceError" | "InternalFailure"
        | "ServiceUnavailable" | "ServiceUnavailableException" => SecretError::Unavailable { reference, reason },
        _ if http::is_transient_status(answer.status) => SecretError::Unavailable { reference, reason },
        _ => SecretError::Invalid { reference, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header"));
        }
        Answer { status, headers: map, body: zeroize::Zeroizing::new(body.as_bytes().to_vec()) }
    }

    #[test]
    fn errors_follow_the_code_not_the_status() {
        let body = |t: &str| format!(r#"{{"__type":"{t}","message":"m"}}"#);
        assert!(matches!(classify_error("r", &answer(400, &[], &body("com.amazonaws.secretsmanager#ResourceNotFoundException"))), SecretError::NotFound { .. }));
        assert!(matches!(classify_error("r", &answer(400, &[], &body("ThrottlingException"))), SecretError::Unavailable { .. }));
        assert!(matches!(classify_error("r", &answer(400, &[], &body("AccessDeniedException"))), SecretError::AccessDenied { .. }));
        assert!(matches!(classify_error("r", &answer(400, &[], &body("InvalidRequestException"))), SecretError::Invalid { .. }));
        let header = answer(403, &[("x-amzn-errortype", "UnrecognizedClientException:http://internal.amazon.com/coral/")], "");
        assert!(matches!(classify_error("r", &header), SecretError::AccessDenied { .. }));
        let xml = answer(403, &[], "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code></Error></Errors></ErrorResponse>");
        assert!(matches!(classify_error("r", &xml), SecretError::AccessDenied { .. }));
        assert!(matches!(classify_error("r", &answer(503, &[], "")), SecretError::Unavailable { .. }));
    }
}
