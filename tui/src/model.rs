//! What the dashboard shows: one snapshot of servers, policies and clients, evaluated by
//! the shared engine, and the state each client is in.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Local};
use k8s_openapi::jiff::Timestamp;
use nauthera_shared::Inventory;
use nauthera_shared::manifests::Origin;
use nauthera_shared::policy::{Compliance, Evaluation, Evaluator, Standing};
use nauthera_shared::resources::{AuthClient, ObjectRef};

/// Where the objects come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A folder of manifests (a GitOps repository), followed on disk.
    Folder(PathBuf),
    /// A cluster, through a kubeconfig context, followed by watches.
    Cluster { context: String },
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder(path) => write!(f, "folder {}", path.display()),
            Self::Cluster { context } => write!(f, "context {context}"),
        }
    }
}

/// Everything one read of the source produced.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub inventory: Inventory,
    /// Where each object was written (folders only), by kind and identity.
    pub origins: HashMap<(&'static str, ObjectRef), Origin>,
    /// What could not be read, shown on screen rather than failing: documents in error,
    /// kinds the user may not watch, an unreachable cluster, an empty folder.
    pub problems: Vec<String>,
    pub read_at: DateTime<Local>,
    /// Whether objects carry the operator's status (a cluster) or not (a folder).
    pub live: bool,
    /// The source's first read (after starting, or switching context or namespace):
    /// nothing to compare it with, so nothing in it is marked as changed.
    pub first: bool,
}

impl Snapshot {
    pub fn new(inventory: Inventory, live: bool) -> Self {
        Self {
            inventory,
            origins: HashMap::new(),
            problems: Vec::new(),
            read_at: Local::now(),
            live,
            first: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        let inventory = &self.inventory;
        inventory.servers.is_empty()
            && inventory.policies.is_empty()
            && inventory.clients.is_empty()
    }
}

/// A Kubernetes Event about an object, as `kubectl describe` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvent {
    /// `Normal` or `Warning`.
    pub type_: String,
    pub reason: String,
    /// The component that reported it (`nauthera-operator`).
    pub from: String,
    pub message: String,
    /// How many times it happened (1 for a single event).
    pub count: i32,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// The recent Events about one object, or why they cannot be read (RBAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvents {
    pub object: ObjectRef,
    /// Oldest first, as `kubectl describe` lists them.
    pub events: Result<Vec<ObjectEvent>, String>,
}

/// Every client a user may list on a cluster, whatever namespace the dashboard shows: what
/// a policy edit is planned against. RBAC may hide some namespaces; they are named, never
/// silently counted as unaffected.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    pub clients: Vec<AuthClient>,
    /// Whether the clients were listed cluster-wide (every namespace at once).
    pub cluster_wide: bool,
    /// The namespaces whose clients were listed one by one, when not cluster-wide.
    pub listed: Vec<String>,
    /// Namespaces whose clients the user may not list.
    pub hidden: Vec<String>,
    /// Whether the user may not list namespaces either: then other namespaces may hold
    /// clients nobody could name.
    pub namespaces_unknown: bool,
    pub read_at: DateTime<Local>,
}

impl Reach {
    /// Whether some clients the policy may govern could not be seen.
    pub fn is_partial(&self) -> bool {
        !self.cluster_wide && (!self.hidden.is_empty() || self.namespaces_unknown)
    }

    /// What the plan covers, in one sentence.
    pub fn describe(&self) -> String {
        let clients = self.clients.len();
        if self.cluster_wide {
            return format!("Planned against every client in the cluster ({clients}).");
        }
        let listed = self.listed.len();
        if self.namespaces_unknown {
            return format!(
                "Planned against {clients} clients of {} only: namespaces cannot be listed (RBAC), so other namespaces may hold clients this plan cannot see.",
                self.listed.join(", ")
            );
        }
        if self.hidden.is_empty() {
            return format!(
                "Planned against every client of the {listed} namespaces ({clients} clients)."
            );
        }
        let hidden = self.hidden.len();
        format!(
            "{hidden} namespace{} hidden by RBAC ({}): clients there are not in this plan, affected or not. Planned against {clients} clients of {listed} of {} namespaces.",
            if hidden == 1 { "" } else { "s" },
            self.hidden.join(", "),
            listed + hidden
        )
    }
}

/// A snapshot with every client evaluated.
#[derive(Clone, Debug)]
pub struct World {
    pub snapshot: Snapshot,
    pub evaluator: Evaluator,
    /// One per client, in the order of `snapshot.inventory.clients`.
    pub evaluations: Vec<Evaluation>,
}

impl World {
    pub fn new(snapshot: Snapshot) -> Self {
        let evaluator = snapshot.inventory.evaluator();
        let evaluations = snapshot
            .inventory
            .clients
            .iter()
            .map(|client| evaluator.evaluate(client))
            .collect();
        Self {
            snapshot,
            evaluator,
            evaluations,
        }
    }

    pub fn inventory(&self) -> &Inventory {
        &self.snapshot.inventory
    }

    /// The state of the client at `index`, as the tree shows it.
    pub fn client_state(&self, index: usize) -> State {
        let evaluation = &self.evaluations[index];
        let client = &self.snapshot.inventory.clients[index];
        State::of_client(evaluation, client, self.snapshot.live)
    }
}

/// A node's state at a glance. Ordered from best to worst, so a parent shows its worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Compliant,
    /// Provisioned, with findings of `Audit` policies.
    Audit,
    /// Compliant, but the operator has not yet reported on this generation.
    Pending,
    NonCompliant,
    /// Cannot be judged or provisioned for a reason outside the client: invalid server,
    /// provider error.
    Error,
}

impl State {
    pub const ALL: [Self; 5] = [
        Self::Compliant,
        Self::Audit,
        Self::Pending,
        Self::NonCompliant,
        Self::Error,
    ];

    /// The symbol that carries the state without colour.
    pub const fn symbol(self) -> &'static str {
        match self {
            Self::Compliant => "✔",
            Self::Audit => "⚠",
            Self::Pending => "◌",
            Self::NonCompliant => "✖",
            Self::Error => "‼",
        }
    }

    /// The name filters use (`state:non-compliant`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Compliant => "compliant",
            Self::Audit => "audit",
            Self::Pending => "pending",
            Self::NonCompliant => "non-compliant",
            Self::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.to_ascii_lowercase().replace(['_', ' '], "-");
        Self::ALL.into_iter().find(|state| {
            state.name() == text
                || (text == "noncompliant" && *state == Self::NonCompliant)
                || (text == "ok" && *state == Self::Compliant)
        })
    }

    fn of_client(evaluation: &Evaluation, client: &AuthClient, live: bool) -> Self {
        if evaluation.standing == Standing::ServerInvalid {
            return Self::Error;
        }
        let judged = match evaluation.compliance {
            Compliance::Compliant => Self::Compliant,
            Compliance::AuditViolations => Self::Audit,
            Compliance::NonCompliant => return Self::NonCompliant,
        };
        if !live {
            return judged;
        }
        // On a cluster, a client is only as good as the operator's last word on it.
        let Some(status) = &client.status else {
            return Self::Pending;
        };
        let current = status.observed_generation.is_some()
            && status.observed_generation == client.metadata.generation;
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        match ready {
            Some(ready) if current && ready.status == "True" => judged,
            Some(ready) if current && ready.status == "False" => Self::Error,
            _ => Self::Pending,
        }
    }
}

/// How many clients are in each state, rolled up a branch of the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    by_state: [usize; 5],
}

impl Counts {
    pub fn add(&mut self, state: State) {
        self.by_state[state as usize] += 1;
    }

    pub fn get(&self, state: State) -> usize {
        self.by_state[state as usize]
    }

    pub fn total(&self) -> usize {
        self.by_state.iter().sum()
    }

    /// The worst state present, if any.
    pub fn worst(&self) -> Option<State> {
        State::ALL
            .into_iter()
            .rev()
            .find(|state| self.get(*state) > 0)
    }
}

impl fmt::Display for Counts {
    /// `9 clients · 8 ✔ · 1 ✖`: states with no client are left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(f, "{total} client{}", if total == 1 { "" } else { "s" })?;
        for state in State::ALL {
            let count = self.get(state);
            if count > 0 {
                write!(f, " · {count} {}", state.symbol())?;
            }
        }
        Ok(())
    }
}

impl World {
    /// The YAML of the object a node shows, as `kubectl get -o yaml` would print it
    /// without the managed-fields noise. Groups have none.
    pub fn yaml_of(&self, target: crate::tree::Target) -> Option<String> {
        use crate::tree::Target;
        fn clean<K: kube::Resource + serde::Serialize + Clone>(object: &K) -> String {
            let mut object = object.clone();
            object.meta_mut().managed_fields = None;
            serde_yaml_ng::to_string(&object).unwrap_or_else(|error| format!("# {error}"))
        }
        let inventory = self.inventory();
        Some(match target {
            Target::Server(index) => clean(&inventory.servers[index]),
            Target::Policy(index) => clean(&inventory.policies[index]),
            Target::Client(index) => clean(&inventory.clients[index]),
            Target::Group(_) => return None,
        })
    }
}
