//! What can go wrong in a reconcile, in words an operator of the operator can act on.
//! Every error carries the condition reason it is reported under.

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
    /// A registration could not be recorded in the operator's namespace.
    #[error("{0}")]
    Unrecorded(String),
    /// The credentials Secret changed between reading and writing it.
    #[error("{0}")]
    SecretChanged(String),
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
            Self::Unrecorded(_) => "unrecorded",
            Self::SecretChanged(_) => "secret_changed",
            Self::Finalizer(_) => "finalizer",
        }
    }

    /// The reason a client's conditions give for this failure.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Provider(error) => error.reason(),
            Self::InitialAccessToken(_) => "InitialAccessTokenMissing",
            Self::Unrecorded(_) => "CannotRecordRegistration",
            Self::SecretChanged(_) => "SecretChanged",
            Self::Kube(_) | Self::MissingField { .. } | Self::Finalizer(_) => "ReconcileError",
        }
    }

    /// Whether this is an ordinary race that the next reconcile settles: not a warning.
    pub fn is_expected(&self) -> bool {
        match self {
            Self::SecretChanged(_) => true,
            Self::Kube(kube::Error::Api(response)) => response.code == 409,
            _ => false,
        }
    }
}

/// An error and its causes as one sentence: `outer: inner: innermost` (how the binary
/// prints a fatal error, too).
pub fn one_line(error: &color_eyre::eyre::Report) -> String {
    error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
