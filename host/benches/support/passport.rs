//! The embedded passport served on loopback, one managed identity registered
//! with it, and a [`ManagedTokenSource`] for that identity: the real token path
//! (secret read → `POST /passport/token` over HTTP → JWT verified against the
//! served JWKS → cached), as `App::open` assembles it.

use flowstudio_host::clock::Clock;
use flowstudio_host::identity::{IdentityRegistry, NewManagedIdentity};
use flowstudio_host::passport::{Issuer, PassportServerConfig, PassportState};
use flowstudio_host::secret::Secret;
use flowstudio_host::secrets::{Freshness, SecretError, SecretReference, SecretValue, SecretsProvider};
use flowstudio_host::token::{IdInfoVerifier, ManagedIdentity, ManagedTokenSource, PassportConfig};
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;

pub const CLIENT_ID: &str = "bench-client";
pub const IDENTITY: &str = "mi-bench";
pub const SECRET: &str = "bench-client-secret-0123456789";

/// The client secret, held in memory: the store itself is not what these benches measure.
pub struct FixedSecret;

impl SecretsProvider for FixedSecret {
    fn read<'a>(&'a self, _reference: &'a SecretReference, _freshness: Freshness) -> BoxFuture<'a, Result<SecretValue, SecretError>> {
        Box::pin(std::future::ready(Ok(SecretValue { value: Secret::new(SECRET), version: Some("1".into()) })))
    }
}

pub fn secret_reference() -> SecretReference {
    SecretReference::File { path: "bench-client-secret".into(), key: None }
}

/// A passport listening on 127.0.0.1 (on the caller's tokio runtime) and the config to reach it.
pub struct LoopbackPassport {
    pub config: PassportConfig,
    pub registry: Arc<IdentityRegistry>,
    _dir: super::TempDir,
}

impl LoopbackPassport {
    /// Must run inside the tokio runtime that will serve it.
    pub async fn start(clock: Arc<dyn Clock>) -> LoopbackPassport {
        let dir = super::TempDir::new("passport");
        let db: PathBuf = flowstudio_host::db::path_in(&dir.0);
        let registry = Arc::new(IdentityRegistry::open_with_clock(&db, clock.clone()).expect("registry"));
        registry
            .create_with_client_secret(
                NewManagedIdentity {
                    id: IDENTITY.into(),
                    name: "Bench identity".into(),
                    client_id: CLIENT_ID.into(),
                    tenant_id: "bench".into(),
                    roles: vec!["workflow-runner".into()],
                    enabled: true,
                },
                &Secret::new(SECRET),
            )
            .expect("identity");
        let embedded = PassportServerConfig::default();
        let issuer = Arc::new(Issuer::generate(embedded.issuer.clone()).expect("issuer"));
        let state = PassportState::with_clock(registry.clone(), issuer, embedded.clone(), clock).expect("passport");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { flowstudio_host::passport::serve(listener, state).await.expect("serve") });
        let mut config = PassportConfig::new(format!("http://{addr}"));
        config.issuer = Some(embedded.issuer);
        config.audience = embedded.audience;
        LoopbackPassport { config, registry, _dir: dir }
    }

    /// A token source for the registered identity, as the trigger sequence builds one.
    pub fn token_source(&self, clock: Arc<dyn Clock>) -> Arc<ManagedTokenSource> {
        let identity = ManagedIdentity {
            managed_identity_id: IDENTITY.into(),
            client_id: CLIENT_ID.into(),
            secret_reference: secret_reference(),
        };
        let verifier = Arc::new(IdInfoVerifier::from_config(&self.config, clock.clone()).expect("verifier"));
        let source = ManagedTokenSource::for_passport(identity, Arc::new(FixedSecret), &self.config, verifier, clock).expect("source");
        Arc::new(source)
    }
}
