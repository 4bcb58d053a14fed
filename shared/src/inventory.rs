//! The plain data the engines work on: every server, policy and client, and the labels of
//! namespaces.

use std::collections::BTreeMap;

use crate::policy::{Evaluation, Evaluator};
use crate::resources::{AuthClient, AuthPolicy, AuthServer};

/// A snapshot of the world, read from a cluster or a folder of manifests.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub servers: Vec<AuthServer>,
    pub policies: Vec<AuthPolicy>,
    pub clients: Vec<AuthClient>,
    /// Namespace name → labels. A namespace missing here has no labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Inventory {
    /// An evaluator over this snapshot's servers, policies and namespaces.
    pub fn evaluator(&self) -> Evaluator {
        Evaluator::new(&self.servers, &self.policies, &self.namespaces)
    }

    /// Every client's evaluation, in the order of `clients`.
    pub fn evaluate_all(&self) -> Vec<Evaluation> {
        let evaluator = self.evaluator();
        self.clients
            .iter()
            .map(|client| evaluator.evaluate(client))
            .collect()
    }
}
