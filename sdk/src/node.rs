//! The typed node trait and the glue between it and the raw WIT export.

use crate::bindings::flowstudio::node::{host, types};
use serde::{de::DeserializeOwned, Serialize};

pub use types::IdInfo;

/// Everything the host tells a node about the run it is part of.
pub type Context = types::ExecutionContext;

impl Context {
    /// The identity the run acts as *now* (the host may have refreshed the
    /// token since the run started, which moves `token_expires_at`).
    pub fn actor(&self) -> IdInfo {
        host::actor()
    }
}

/// A workflow node with typed input and output.
pub trait Node {
    /// Deserialized from the node's JSON input.
    type Input: DeserializeOwned;
    /// Serialized as the node's JSON output.
    type Output: Serialize;

    fn run(ctx: &Context, input: Self::Input) -> Result<Self::Output, NodeError>;
}

/// How a node run fails. Only [`NodeError::Retryable`] lets the host retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Failed(String),
    #[error("retryable: {0}")]
    Retryable(String),
    #[error("denied: {0}")]
    Denied(String),
}

impl From<crate::http::HttpError> for NodeError {
    /// A policy denial stays a denial; network trouble may pass, so it is retryable.
    fn from(err: crate::http::HttpError) -> Self {
        use crate::http::HttpError;
        match err {
            HttpError::Denied(_) | HttpError::ForbiddenHeader(_) => NodeError::Denied(err.to_string()),
            HttpError::Network(_) => NodeError::Retryable(err.to_string()),
            HttpError::InvalidRequest(_) | HttpError::Json(_) => NodeError::Failed(err.to_string()),
        }
    }
}

impl From<NodeError> for types::NodeError {
    fn from(err: NodeError) -> Self {
        match err {
            NodeError::InvalidInput(m) => types::NodeError::InvalidInput(m),
            NodeError::Failed(m) => types::NodeError::Failed(m),
            NodeError::Retryable(m) => types::NodeError::Retryable(m),
            NodeError::Denied(m) => types::NodeError::Denied(m),
        }
    }
}

#[doc(hidden)]
pub fn __run<N: Node>(ctx: Context, input: String) -> Result<String, types::NodeError> {
    let input: N::Input = serde_json::from_str(&input)
        .map_err(|e| types::NodeError::InvalidInput(format!("input does not match: {e}")))?;
    let output = N::run(&ctx, input).map_err(types::NodeError::from)?;
    serde_json::to_string(&output)
        .map_err(|e| types::NodeError::Failed(format!("output could not be serialized: {e}")))
}
