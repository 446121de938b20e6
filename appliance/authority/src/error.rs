//! The Authority's error type. Each error carries the RFC 6750 / RFC 9449 error code that the
//! HTTP layer puts into `WWW-Authenticate`, and a message that names what was wrong.

use std::path::PathBuf;

/// The error code an HTTP layer reports for an [`AuthorityError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_token`: the access token is missing its binding, expired, forged or malformed.
    InvalidToken,
    /// `invalid_dpop_proof`: the DPoP proof is malformed, replayed or for another request.
    InvalidDpopProof,
    /// `use_dpop_nonce`: the proof must carry the server's current nonce.
    UseDpopNonce,
    /// `insufficient_scope`: the token is valid but lacks the route's scope.
    InsufficientScope,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_request`: the request itself is malformed.
    InvalidRequest,
    /// A server-side failure (key file, randomness).
    Internal,
}

impl ErrorCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidClient => "invalid_client",
            Self::InvalidRequest => "invalid_request",
            Self::Internal => "server_error",
        }
    }
}

/// Why an Authority operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// An access token was rejected.
    #[error("access token rejected: {0}")]
    InvalidToken(String),
    /// A DPoP proof was rejected.
    #[error("DPoP proof rejected: {0}")]
    InvalidDpopProof(String),
    /// The DPoP proof lacks the current server nonce (or carries a stale one).
    #[error("DPoP proof must carry the server's current nonce")]
    UseDpopNonce,
    /// The token lacks the scope the operation needs.
    #[error("token lacks scope {needed}")]
    InsufficientScope {
        /// The missing scope.
        needed: String,
    },
    /// Client or user credentials did not check out.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// A request parameter is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The replay cache is full of unexpired entries; proofs are refused until some expire.
    #[error("DPoP replay cache is full ({capacity} live proofs); refusing new proofs")]
    ReplayCacheFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The token-signing key file could not be read, parsed or written.
    #[error("token signing key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A cryptographic primitive or the OS random source failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl AuthorityError {
    /// The wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidToken(_) => ErrorCode::InvalidToken,
            Self::InvalidDpopProof(_) | Self::ReplayCacheFull { .. } => ErrorCode::InvalidDpopProof,
            Self::UseDpopNonce => ErrorCode::UseDpopNonce,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::InvalidCredentials(_) => ErrorCode::InvalidClient,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Key { .. } | Self::Crypto(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn token(msg: impl Into<String>) -> Self {
        Self::InvalidToken(msg.into())
    }

    pub(crate) fn proof(msg: impl Into<String>) -> Self {
        Self::InvalidDpopProof(msg.into())
    }
}
