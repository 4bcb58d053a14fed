//! What can go wrong in a reconcile, in words an operator of the operator can act on.

use crate::provider::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
    /// An object without a field the API server always sets: a bug or a bad fixture.
    #[error("{kind} has no {field}")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    /// The server's initial access token cannot be read.
    #[error("{0}")]
    InitialAccessToken(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// The label metrics count failures by.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Provider(_) => "provider",
            Self::MissingField { .. } => "missing_field",
            Self::InitialAccessToken(_) => "initial_access_token",
            Self::Finalizer(_) => "finalizer",
        }
    }
}
