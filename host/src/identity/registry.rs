//! The managed-identity registry: the service accounts runs act as, kept in the
//! state database (tables `managed_identities`, `managed_identity_secrets`).
//!
//! [`IdentityRegistry::resolve`] is step 1 of the trigger sequence (DESIGN §2).
//! For the embedded passport it also keeps each identity's client secret, as a
//! salted slow hash only (see [`client_secret`](super::client_secret)); neither
//! the secret nor its hash ever leaves this module.

use super::client_secret::{burn_equivalent_work, SecretHash, DEFAULT_HASH_ITERATIONS, MIN_HASH_ITERATIONS, SCHEME};
use super::validate::{validate_new, validate_secret};
use crate::clock::{Clock, SystemClock};
use crate::db::{self, DbError};
use crate::secret::Secret;
use crate::validation::FieldError;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, OptionalExtension as _};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// A service account that workflows run as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedIdentity {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub tenant_id: String,
    pub enabled: bool,
    pub roles: Vec<String>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// What a caller gives to create an identity (the REST API's body, camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewManagedIdentity {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub tenant_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid managed identity: {}", join(.0))]
    Invalid(Vec<FieldError>),
    #[error("managed identity `{0}` does not exist")]
    NotFound(String),
    #[error("managed identity `{0}` is disabled")]
    Disabled(String),
    #[error("stored managed identity `{id}` is damaged: {reason}")]
    Damaged { id: String, reason: String },
    #[error("identity registry is unusable: a thread panicked while holding its connection")]
    Poisoned,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl IdentityError {
    /// The field problems, when the input was at fault.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            IdentityError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl From<rusqlite::Error> for IdentityError {
    fn from(e: rusqlite::Error) -> Self {
        IdentityError::Db(DbError::Query(e))
    }
}

fn join(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Why a client could not authenticate. The passport answers `invalid_client`
/// to all of them alike; the distinction is for the host's own logs.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("no managed identity has client id `{0}`")]
    UnknownClient(String),
    #[error("managed identity `{0}` is disabled")]
    Disabled(String),
    #[error("managed identity `{0}` has no client secret set")]
    NoSecret(String),
    #[error("wrong client secret for managed identity `{0}`")]
    WrongSecret(String),
    #[error(transparent)]
    Store(#[from] IdentityError),
}

/// Managed identities in the state database. One connection behind a mutex:
/// every operation is a short statement, and password hashing runs outside it.
pub struct IdentityRegistry {
    conn: Mutex<rusqlite::Connection>,
    clock: Arc<dyn Clock>,
    hash_iterations: u32,
}

impl std::fmt::Debug for IdentityRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRegistry").field("hash_iterations", &self.hash_iterations).finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS managed_identities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    roles TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS managed_identity_secrets (
    identity_id TEXT PRIMARY KEY REFERENCES managed_identities(id) ON DELETE CASCADE,
    scheme TEXT NOT NULL,
    iterations INTEGER NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    set_at TEXT NOT NULL
);";

const COLUMNS: &str = "id, name, client_id, tenant_id, enabled, roles, created_at";

impl IdentityRegistry {
    /// Open (creating its tables if needed) the registry in the state database at `path`.
    pub fn open(path: &Path) -> Result<IdentityRegistry, IdentityError> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    pub fn open_with_clock(path: &Path, clock: Arc<dyn Clock>) -> Result<IdentityRegistry, IdentityError> {
        let conn = db::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(IdentityRegistry { conn: Mutex::new(conn), clock, hash_iterations: DEFAULT_HASH_ITERATIONS })
    }

    /// The PBKDF2 cost for secrets set from now on (stored hashes keep their own).
    /// Clamped to at least [`MIN_HASH_ITERATIONS`].
    pub fn with_hash_iterations(mut self, iterations: u32) -> Self {
        self.hash_iterations = iterations.max(MIN_HASH_ITERATIONS);
        self
    }

    fn conn(&self) -> Result<MutexGuard<'_, rusqlite::Connection>, IdentityError> {
        self.conn.lock().map_err(|_| IdentityError::Poisoned)
    }

    /// Register a new identity. All field problems come back at once; a taken
    /// `id` or `clientId` is a field problem too.
    pub fn create(&self, new: NewManagedIdentity) -> Result<ManagedIdentity, IdentityError> {
        self.insert(new, None)
    }

    /// Register a new identity together with its client secret, in one
    /// transaction: either both are stored or neither.
    pub fn create_with_client_secret(&self, new: NewManagedIdentity, secret: &Secret) -> Result<ManagedIdentity, IdentityError> {
        self.insert(new, Some(secret))
    }

    fn insert(&self, new: NewManagedIdentity, secret: Option<&Secret>) -> Result<ManagedIdentity, IdentityError> {
        let mut errors = validate_new(&new);
        errors.extend(secret.and_then(validate_secret));
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        // Hash before taking the connection: it is deliberately slow.
        let hashed = secret.map(|s| SecretHash::new(s, self.hash_iterations));
        let identity = ManagedIdentity {
            id: new.id,
            name: new.name,
            client_id: new.client_id,
            tenant_id: new.tenant_id,
            enabled: new.enabled,
            roles: new.roles,
            created_at: self.now(),
        };
        let roles = serde_json::to_string(&identity.roles).map_err(|e| IdentityError::Damaged { id: identity.id.clone(), reason: e.to_string() })?;
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let taken = |sql: &str, value: &str| -> Result<bool, rusqlite::Error> {
            tx.query_row(sql, [value], |_| Ok(())).optional().map(|r| r.is_some())
        };
        if taken("SELECT 1 FROM managed_identities WHERE id = ?1", &identity.id)? {
            errors.push(FieldError::new("id", format!("a managed identity with id `{}` already exists", identity.id)));
        }
        if taken("SELECT 1 FROM managed_identities WHERE client_id = ?1", &identity.client_id)? {
            errors.push(FieldError::new(
                "clientId",
                format!("client id `{}` already belongs to another managed identity", identity.client_id),
            ));
        }
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        tx.execute(
            &format!("INSERT INTO managed_identities ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                identity.id,
                identity.name,
                identity.client_id,
                identity.tenant_id,
                identity.enabled,
                roles,
                identity.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)
            ],
        )?;
        if let Some(hashed) = &hashed {
            write_hash(&tx, &identity.id, hashed, identity.created_at)?;
        }
        tx.commit()?;
        Ok(identity)
    }

    pub fn get(&self, id: &str) -> Result<Option<ManagedIdentity>, IdentityError> {
        self.find("id", id)
    }

    pub fn get_by_client_id(&self, client_id: &str) -> Result<Option<ManagedIdentity>, IdentityError> {
        self.find("client_id", client_id)
    }

    fn find(&self, column: &str, value: &str) -> Result<Option<ManagedIdentity>, IdentityError> {
        let conn = self.conn()?;
        let sql = format!("SELECT {COLUMNS} FROM managed_identities WHERE {column} = ?1");
        // Cached: step 1 of every execution runs this.
        let row = conn.prepare_cached(&sql)?.query_row([value], read_row).optional()?;
        row.transpose()
    }

    /// All identities, ordered by id.
    pub fn list(&self) -> Result<Vec<ManagedIdentity>, IdentityError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM managed_identities ORDER BY id"))?;
        let rows = stmt.query_map([], read_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Step 1 of the trigger sequence: the identity must exist and be enabled.
    pub fn resolve(&self, id: &str) -> Result<ManagedIdentity, IdentityError> {
        match self.get(id)? {
            None => Err(IdentityError::NotFound(id.into())),
            Some(identity) if !identity.enabled => Err(IdentityError::Disabled(id.into())),
            Some(identity) => Ok(identity),
        }
    }

    pub fn disable(&self, id: &str) -> Result<ManagedIdentity, IdentityError> {
        self.set_enabled(id, false)
    }

    pub fn enable(&self, id: &str) -> Result<ManagedIdentity, IdentityError> {
        self.set_enabled(id, true)
    }

    fn set_enabled(&self, id: &str, enabled: bool) -> Result<ManagedIdentity, IdentityError> {
        let changed = self.conn()?.execute("UPDATE managed_identities SET enabled = ?2 WHERE id = ?1", params![id, enabled])?;
        if changed == 0 {
            return Err(IdentityError::NotFound(id.into()));
        }
        self.get(id)?.ok_or_else(|| IdentityError::NotFound(id.into()))
    }

    /// Remove an identity and its client secret.
    pub fn delete(&self, id: &str) -> Result<(), IdentityError> {
        // The secret row goes with it through `ON DELETE CASCADE` (foreign keys are on).
        let changed = self.conn()?.execute("DELETE FROM managed_identities WHERE id = ?1", [id])?;
        if changed == 0 {
            return Err(IdentityError::NotFound(id.into()));
        }
        Ok(())
    }

    /// Set (or replace) the identity's client secret for the embedded passport.
    /// Only a salted hash is stored.
    pub fn set_client_secret(&self, id: &str, secret: &Secret) -> Result<(), IdentityError> {
        if let Some(problem) = validate_secret(secret) {
            return Err(IdentityError::Invalid(vec![problem]));
        }
        if self.get(id)?.is_none() {
            return Err(IdentityError::NotFound(id.into()));
        }
        // Hash before taking the connection: it is deliberately slow.
        let hashed = SecretHash::new(secret, self.hash_iterations);
        let now = self.now();
        let changed = write_hash(&*self.conn()?, id, &hashed, now)?;
        if changed == 0 {
            // Deleted between the check and the write.
            return Err(IdentityError::NotFound(id.into()));
        }
        Ok(())
    }

    /// Whether the identity has a client secret set (never the secret itself).
    pub fn has_client_secret(&self, id: &str) -> Result<bool, IdentityError> {
        let conn = self.conn()?;
        let found = conn.query_row("SELECT 1 FROM managed_identity_secrets WHERE identity_id = ?1", [id], |_| Ok(())).optional()?;
        Ok(found.is_some())
    }

    /// Authenticate a client of the embedded passport by client id and secret.
    /// Every failure costs the same hashing work, so response times do not tell
    /// which client ids exist. Slow on purpose: call it off the async executor.
    pub fn verify_client(&self, client_id: &str, secret: &Secret) -> Result<ManagedIdentity, ClientAuthError> {
        let Some(identity) = self.get_by_client_id(client_id)? else {
            burn_equivalent_work(secret, self.hash_iterations);
            return Err(ClientAuthError::UnknownClient(client_id.into()));
        };
        let Some(stored) = self.stored_hash(&identity.id)? else {
            burn_equivalent_work(secret, self.hash_iterations);
            return Err(ClientAuthError::NoSecret(identity.id));
        };
        // Check the secret before the enabled flag, so a disabled identity costs the same.
        if !stored.matches(secret) {
            return Err(ClientAuthError::WrongSecret(identity.id));
        }
        if !identity.enabled {
            return Err(ClientAuthError::Disabled(identity.id));
        }
        Ok(identity)
    }

    fn stored_hash(&self, id: &str) -> Result<Option<SecretHash>, IdentityError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT scheme, iterations, salt, hash FROM managed_identity_secrets WHERE identity_id = ?1",
                [id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, Vec<u8>>(3)?)),
            )
            .optional()?;
        let Some((scheme, iterations, salt, hash)) = row else { return Ok(None) };
        let damaged = |what: &str| IdentityError::Damaged { id: id.into(), reason: format!("client secret record: {what}") };
        if scheme != SCHEME {
            return Err(damaged(&format!("unknown hash scheme `{scheme}`")));
        }
        if iterations < MIN_HASH_ITERATIONS {
            return Err(damaged("iteration count below the minimum"));
        }
        let salt = salt.try_into().map_err(|_| damaged("salt has the wrong length"))?;
        let hash = hash.try_into().map_err(|_| damaged("hash has the wrong length"))?;
        Ok(Some(SecretHash { iterations, salt, hash }))
    }

    fn now(&self) -> DateTime<Utc> {
        // Millisecond precision: what the database keeps, so a read equals what create returned.
        let now = self.clock.now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }
}

/// Insert or replace an identity's secret hash; 0 when the identity does not exist.
fn write_hash(conn: &rusqlite::Connection, id: &str, hashed: &SecretHash, at: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO managed_identity_secrets (identity_id, scheme, iterations, salt, hash, set_at)
         SELECT id, ?2, ?3, ?4, ?5, ?6 FROM managed_identities WHERE id = ?1
         ON CONFLICT (identity_id) DO UPDATE SET
             scheme = excluded.scheme, iterations = excluded.iterations,
             salt = excluded.salt, hash = excluded.hash, set_at = excluded.set_at",
        params![id, SCHEME, hashed.iterations, hashed.salt.as_slice(), hashed.hash.as_slice(), at.to_rfc3339_opts(SecondsFormat::Millis, true)],
    )
}

/// One row, or the reason it cannot be read back (a damaged `roles`/`created_at`).
fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ManagedIdentity, IdentityError>> {
    let id: String = row.get(0)?;
    let roles: String = row.get(5)?;
    let created_at: String = row.get(6)?;
    let damaged = |reason: String| IdentityError::Damaged { id: id.clone(), reason };
    let roles = match serde_json::from_str::<Vec<String>>(&roles) {
        Ok(roles) => roles,
        Err(e) => return Ok(Err(damaged(format!("roles: {e}")))),
    };
    let created_at = match DateTime::parse_from_rfc3339(&created_at) {
        Ok(t) => t.with_timezone(&Utc),
        Err(e) => return Ok(Err(damaged(format!("createdAt: {e}")))),
    };
    Ok(Ok(ManagedIdentity {
        name: row.get(1)?,
        client_id: row.get(2)?,
        tenant_id: row.get(3)?,
        enabled: row.get(4)?,
        roles,
        created_at,
        id,
    }))
}

/// `createdAt` as RFC 3339 in UTC with milliseconds (chrono's serde feature is not enabled).
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}
