//! A `TokenSource` that mints tokens from the embedded passport for a fixed
//! identity: the identity of `flowstudio node run` and of runtime tests.

use super::{Claims, Issuer};
use crate::identity::IdInfo;
use crate::token::{AccessToken, TokenError, TokenFuture, TokenSource};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct DevTokenSource {
    issuer: Arc<Issuer>,
    audience: String,
    identity: IdInfo,
    lifetime_secs: u64,
    current: Mutex<Option<AccessToken>>,
    minted: std::sync::atomic::AtomicU64,
}

impl DevTokenSource {
    pub fn new(issuer: Arc<Issuer>, audience: impl Into<String>, identity: IdInfo, lifetime_secs: u64) -> Self {
        DevTokenSource {
            issuer,
            audience: audience.into(),
            identity,
            lifetime_secs,
            current: Mutex::new(None),
            minted: Default::default(),
        }
    }

    /// The identity `flowstudio node run` acts as.
    pub fn dev_identity() -> IdInfo {
        IdInfo {
            user_id: "dev-client".into(),
            tenant_id: "dev-tenant".into(),
            client_id: "dev-client".into(),
            display_name: "Local Developer".into(),
            roles: vec!["workflow.operator".into()],
            scopes: vec!["api.read".into()],
            is_service_account: true,
            managed_identity_id: Some("mi-dev".into()),
            token_expires_at: 0,
        }
    }

    /// How many tokens this source has minted.
    pub fn minted(&self) -> u64 {
        self.minted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn mint(&self) -> Result<AccessToken, TokenError> {
        let now = unix_now();
        let id = &self.identity;
        let claims = Claims {
            iss: self.issuer.issuer().into(),
            aud: self.audience.clone(),
            sub: id.user_id.clone(),
            exp: now + self.lifetime_secs,
            iat: now,
            nbf: now,
            tid: id.tenant_id.clone(),
            client_id: id.client_id.clone(),
            name: id.display_name.clone(),
            roles: id.roles.clone(),
            scope: id.scopes.join(" "),
            idtyp: id.is_service_account.then(|| "app".to_string()),
            mi: id.managed_identity_id.clone(),
            jti: hex::encode(rand::random::<[u8; 16]>()),
        };
        let token = self.issuer.sign(&claims).map_err(|e| TokenError::Unavailable {
            identity: id.client_id.clone(),
            reason: e.to_string(),
        })?;
        self.minted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id_info = IdInfo { token_expires_at: claims.exp, ..id.clone() };
        Ok(AccessToken { token, expires_at: claims.exp, id_info })
    }
}

impl TokenSource for DevTokenSource {
    fn token<'a>(&'a self, _audience: Option<&'a str>) -> TokenFuture<'a> {
        Box::pin(async move {
            let now = unix_now();
            let mut current = self.current.lock().map_err(|_| TokenError::Unavailable {
                identity: self.identity.client_id.clone(),
                reason: "token cache lock poisoned".into(),
            })?;
            match current.as_ref() {
                Some(t) if t.expires_at > now + 30 => Ok(t.clone()),
                _ => {
                    let fresh = self.mint()?;
                    *current = Some(fresh.clone());
                    Ok(fresh)
                }
            }
        })
    }

    fn invalidate(&self, rejected: &AccessToken) {
        if let Ok(mut current) = self.current.lock() {
            if current.as_ref().is_some_and(|t| t.token == rejected.token) {
                *current = None;
            }
        }
    }

    fn id_info(&self) -> IdInfo {
        match self.current.lock().ok().and_then(|c| c.as_ref().map(|t| t.id_info.clone())) {
            Some(info) => info,
            None => self.identity.clone(),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
