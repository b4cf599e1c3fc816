//! Which client a token request claims to be: `client_secret_basic` (the
//! `Authorization: Basic` header, id and secret form-urldecoded after base64,
//! RFC 6749 §2.3.1) or `client_secret_post` (`client_id`/`client_secret` in
//! the body). Exactly one method per request.

use super::form::{decode_component, TokenForm};
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;
use zeroize::Zeroizing;

/// The credentials a request presented; checked against the registry later.
#[derive(Debug)]
pub(crate) struct ClientCredentials {
    pub client_id: String,
    pub secret: Secret,
    pub method: AuthMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    Basic,
    Post,
}

/// Why no credentials could be taken from a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CredentialsProblem {
    /// The request is malformed (`invalid_request`).
    Malformed(String),
    /// No usable client authentication (`invalid_client`).
    Unauthenticated(String),
}

pub(crate) fn client_credentials(headers: &HeaderMap, form: &TokenForm, allow_post: bool) -> Result<ClientCredentials, CredentialsProblem> {
    use CredentialsProblem::*;
    let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(Malformed("the `Authorization` header is repeated".into()));
    }
    match (header, form.client_secret.as_ref()) {
        (Some(_), Some(_)) => {
            Err(Malformed("the client authenticated twice (Basic and `client_secret`); use one method".into()))
        }
        (Some(value), None) => {
            let value = value.to_str().map_err(|_| Unauthenticated("the `Authorization` header is not text".into()))?;
            let (client_id, secret) = basic_credentials(value)?;
            if form.get("client_id").is_some_and(|body_id| body_id != client_id) {
                return Err(Malformed("`client_id` in the body differs from the Basic credentials".into()));
            }
            Ok(ClientCredentials { client_id, secret, method: AuthMethod::Basic })
        }
        (None, Some(secret)) => {
            if !allow_post {
                return Err(Unauthenticated("client_secret_post is not accepted here; use client_secret_basic".into()));
            }
            let client_id = form.get("client_id").ok_or_else(|| Malformed("`client_secret` without `client_id`".into()))?;
            Ok(ClientCredentials { client_id: client_id.into(), secret: secret.clone(), method: AuthMethod::Post })
        }
        (None, None) => Err(Unauthenticated("no client authentication".into())),
    }
}

/// `Basic base64(form(id) ":" form(secret))`.
fn basic_credentials(value: &str) -> Result<(String, Secret), CredentialsProblem> {
    let bad = |why: &str| CredentialsProblem::Unauthenticated(format!("Basic credentials {why}"));
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(|| bad("are missing"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(CredentialsProblem::Unauthenticated("only the Basic authorization scheme is accepted".into()));
    }
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| bad("are not base64"))?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad("are not UTF-8"))?;
    // The id and secret were form-encoded, so the first `:` is the separator.
    let (raw_id, raw_secret) = text.split_once(':').ok_or_else(|| bad("have no `:` separator"))?;
    let id = decode_component(raw_id).ok_or_else(|| bad("hold a client id that is not form-urlencoded"))?;
    let secret = decode_component(raw_secret).ok_or_else(|| bad("hold a secret that is not form-urlencoded"))?;
    if id.is_empty() || secret.is_empty() {
        return Err(bad("have an empty client id or secret"));
    }
    Ok((id.to_string(), Secret::new(secret.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(http::header::AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    fn form(body: &str) -> TokenForm {
        TokenForm::parse(body.as_bytes()).expect("form")
    }

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        let creds = client_credentials(&basic("my%3Aclient:a%2Bb%2Fc%3Ad%25e%3D"), &form(""), true).expect("creds");
        assert_eq!(creds.client_id, "my:client");
        assert_eq!(creds.secret.expose(), "a+b/c:d%e=");
        assert_eq!(creds.method, AuthMethod::Basic);
    }

    #[test]
    fn a_raw_basic_secret_is_not_accepted_as_is() {
        // `+` becomes a space and `%e=` is no escape: never the raw secret.
        let result = client_credentials(&basic("client:a+b/c:d%e="), &form(""), true);
        assert!(matches!(result, Err(CredentialsProblem::Unauthenticated(_))), "{result:?}");
        let creds = client_credentials(&basic("client:a+b"), &form(""), true).expect("creds");
        assert_eq!(creds.secret.expose(), "a b");
    }

    #[test]
    fn one_method_per_request_and_post_can_be_turned_off() {
        let both = client_credentials(&basic("c:s"), &form("client_id=c&client_secret=s"), true);
        assert!(matches!(both, Err(CredentialsProblem::Malformed(_))));
        let post = client_credentials(&HeaderMap::new(), &form("client_id=c&client_secret=s"), true).expect("post");
        assert_eq!((post.client_id.as_str(), post.method), ("c", AuthMethod::Post));
        let off = client_credentials(&HeaderMap::new(), &form("client_id=c&client_secret=s"), false);
        assert!(matches!(off, Err(CredentialsProblem::Unauthenticated(_))));
        let none = client_credentials(&HeaderMap::new(), &form("client_id=c"), true);
        assert!(matches!(none, Err(CredentialsProblem::Unauthenticated(_))));
        let mismatch = client_credentials(&basic("c:s"), &form("client_id=d"), true);
        assert!(matches!(mismatch, Err(CredentialsProblem::Malformed(_))));
    }
}
