//! The embedded passport: signs real JWTs for the host's own identities and
//! publishes the public key as a JWKS, so tokens it hands out verify exactly
//! like those of an external passport.

mod dev_source;
mod issuer;
mod verify;

pub use dev_source::DevTokenSource;
pub use issuer::{Claims, Issuer};
pub use verify::{JwtError, JwtVerifier};
