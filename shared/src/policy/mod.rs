//! The policy engine: which server and policies govern a client, whether it complies, and
//! the settings it gets. Pure functions over plain data.
//!
//! - [`Evaluator`] resolves server, namespace trust and governing policies, and evaluates.
//! - [`rules`] holds every rule a client is checked against.
//! - [`effective`] merges the policies into the settings the provider is given.
//! - [`admission`] decides which findings refuse a write at admission.

pub mod admission;
mod compiled;
mod effective;
mod evaluate;
mod resolve;
mod rules;
mod violation;

pub use compiled::{CompiledPolicy, DEFAULT_ROTATION_OVERLAP, FieldError, next_rotation};
pub use effective::{EffectiveSettings, SettingChange, default_secret_name, setting_changes};
pub use evaluate::PreparedClient;
pub use resolve::{CompiledServer, Evaluator};
pub use rules::{RESERVED_LABELS, TEMPLATE_KEYS_ANNOTATION};
pub use violation::{Violation, rule};

use serde::Serialize;

use crate::resources::ObjectRef;

/// Whether a client may be provisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Compliance {
    /// Breaks no rule: provisioned.
    Compliant,
    /// Breaks only rules of policies in `Audit` mode: provisioned and reported.
    AuditViolations,
    /// Breaks an enforced rule: not provisioned.
    NonCompliant,
}

impl Compliance {
    /// Whether the operator provisions a client in this state.
    pub const fn is_provisionable(self) -> bool {
        !matches!(self, Self::NonCompliant)
    }
}

/// How far resolution got, which tells the TUI which group a client belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Standing {
    /// Server found, namespace trusted, governed by at least one policy.
    Governed,
    /// The referenced AuthServer does not exist.
    ServerNotFound,
    /// The referenced AuthServer's own spec is invalid.
    ServerInvalid,
    /// The server does not trust the client's namespace.
    NamespaceNotTrusted,
    /// No policy selected by the server governs the client.
    NoGoverningPolicy,
}

/// Everything the engine concluded about one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub client: ObjectRef,
    /// The AuthServer the client references (whether or not it exists).
    pub server: ObjectRef,
    pub standing: Standing,
    /// The policies that govern the client, ordered by namespace and name.
    pub governing: Vec<ObjectRef>,
    pub violations: Vec<Violation>,
    pub compliance: Compliance,
    /// The settings the client is provisioned with; present when it is provisionable.
    pub effective: Option<EffectiveSettings>,
    /// The governing policies with `violationResponse: Revoke` whose enforced rules the
    /// client breaks: its registration, if any, is to be deleted. Empty in every other
    /// case — a broken policy (`policyValid`) never revokes, an accident must not.
    pub revoked_by: Vec<ObjectRef>,
}

impl Evaluation {
    /// The violations that block provisioning.
    pub fn enforced_violations(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|violation| violation.is_enforced())
    }
}
