//! The embedded passport: signs real JWTs for the host's own identities and
//! publishes the public key as a JWKS, so tokens it hands out verify exactly
//! like those of an external passport.
//!
//! - [`Issuer`]: the signing key and token minting; [`load_or_create_issuer`]
//!   keeps its key in the data dir (0600).
//! - [`server`]: the HTTP endpoints (`/passport/token`, `/passport/jwks`,
//!   discovery) over the [`IdentityRegistry`](crate::identity::IdentityRegistry).
//! - [`DevTokenSource`]: tokens for a fixed identity (`flowstudio node run`, tests).
//! - [`JwtVerifier`]: checks a token against a JWKS.

mod dev_source;
mod issuer;
mod keys;
pub mod server;
mod verify;

pub use dev_source::DevTokenSource;
pub use issuer::{Claims, Issuer, IssuerError};
pub use keys::{load_or_create_issuer, signing_key_path, KeyError};
pub use server::{router, serve, PassportServerConfig, PassportState};
pub use verify::{JwtError, JwtVerifier};

/// The `iss` of the tokens `flowstudio node run` mints for its dev identity.
pub const DEV_ISSUER: &str = "flowstudio-dev";
