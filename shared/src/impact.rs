//! The impact (blast-radius) engine: what a proposed policy would do to every client,
//! before it is committed, in the spirit of `terraform plan`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::inventory::Inventory;
use crate::manifests::{Manifest, parse_documents};
use crate::policy::{
    CompiledPolicy, CompiledServer, Evaluation, Evaluator, PreparedClient, SettingChange,
    Violation, setting_changes,
};
use crate::resources::{AuthPolicy, ObjectRef, labels_of};
use crate::yaml_location::locate;

/// What a policy edit (or a whole proposed state) does to one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ImpactKind {
    /// Provisionable now, not after the edit (`-`).
    Breaks,
    /// A client the proposed state adds, which would be refused (`x`).
    AddedRefused,
    /// Not provisionable now, provisionable after the edit (`+`).
    Fixes,
    /// A client the proposed state adds, which would be provisioned (`*`).
    Added,
    /// Provisionable before and after, with different settings or policies (`~`).
    Changes,
    /// Not provisionable before or after, for different reasons (`!`).
    ReasonsChange,
    /// Nothing changes.
    Unaffected,
}

impl ImpactKind {
    /// The plan symbol, as `terraform plan` would draw it.
    pub const fn symbol(self) -> char {
        match self {
            Self::Breaks => '-',
            Self::AddedRefused => 'x',
            Self::Fixes => '+',
            Self::Added => '*',
            Self::Changes => '~',
            Self::ReasonsChange => '!',
            Self::Unaffected => ' ',
        }
    }
}

/// One affected client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientImpact {
    pub client: ObjectRef,
    pub kind: ImpactKind,
    /// Settings (and governing policies) that differ, for `Changes` and `Fixes`.
    pub changes: Vec<SettingChange>,
    /// The violations after the edit that were not there before: why it breaks, or the
    /// new audit findings of a client that keeps working.
    pub new_violations: Vec<Violation>,
    /// The violations the edit clears.
    pub resolved_violations: Vec<Violation>,
}

/// Counts per kind of impact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub breaks: usize,
    pub fixes: usize,
    pub changes: usize,
    pub reasons_change: usize,
    pub unaffected: usize,
    /// New clients that would be provisioned (whole proposed states only).
    pub added: usize,
    /// New clients that would be refused (whole proposed states only).
    pub added_refused: usize,
}

impl Summary {
    /// Whether any client would not be provisionable: one that breaks, or a new one that
    /// would be refused. A CI gate fails on this.
    pub fn refuses_any(&self) -> bool {
        self.breaks > 0 || self.added_refused > 0
    }
}

impl fmt::Display for Summary {
    /// `Plan: 2 clients become non-compliant, 7 change settings, 1 becomes compliant, 40 unaffected.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clients = if self.breaks == 1 {
            "client"
        } else {
            "clients"
        };
        let verb =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        write!(
            f,
            "Plan: {} {clients} {} non-compliant, {} {} settings, {} {} compliant",
            self.breaks,
            verb(self.breaks, "becomes", "become"),
            self.changes,
            verb(self.changes, "changes", "change"),
            self.fixes,
            verb(self.fixes, "becomes", "become"),
        )?;
        if self.reasons_change > 0 {
            write!(
                f,
                ", {} {} non-compliant for new reasons",
                self.reasons_change,
                verb(self.reasons_change, "stays", "stay")
            )?;
        }
        let new = self.added + self.added_refused;
        if new > 0 {
            write!(
                f,
                ", {new} new {} ({} refused)",
                verb(new, "client", "clients"),
                self.added_refused
            )?;
        }
        write!(f, ", {} unaffected.", self.unaffected)
    }
}

/// The full answer for one proposed policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The policy as proposed.
    pub policy: ObjectRef,
    /// Affected clients only, breaking ones first, then by name.
    pub clients: Vec<ClientImpact>,
    pub summary: Summary,
}

impl Plan {
    /// Whether any client would stop being provisionable (a CI gate fails on this).
    pub fn breaks_any(&self) -> bool {
        self.summary.refuses_any()
    }
}

/// What a proposed state does to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Change {
    Added,
    Changed,
    Removed,
}

impl Change {
    /// `+`, `~`, `-`, as `terraform plan` draws them.
    pub const fn symbol(self) -> char {
        match self {
            Self::Added => '+',
            Self::Changed => '~',
            Self::Removed => '-',
        }
    }
}

/// An object a proposed state adds, changes or removes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectChange {
    /// `AuthServer`, `AuthPolicy`, `AuthClient` or `Namespace` (its labels).
    pub kind: &'static str,
    pub object: ObjectRef,
    pub change: Change,
}

impl fmt::Display for ObjectChange {
    /// `~ AuthPolicy security/web-apps-policy`; a namespace is named alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.kind == "Namespace" {
            self.object.name.clone()
        } else {
            self.object.to_string()
        };
        write!(f, "{} {} {name}", self.change.symbol(), self.kind)
    }
}

/// The plan of a whole proposed state against the current one (a pull request that
/// touches several files): every object it adds, changes or removes, and what that does
/// to every client, new ones included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatePlan {
    /// Servers first, then policies, clients and namespaces, each by name.
    pub changes: Vec<ObjectChange>,
    /// Affected clients only, the refused ones first, then by kind and name.
    pub clients: Vec<ClientImpact>,
    pub summary: Summary,
}

impl StatePlan {
    /// Whether any client would not be provisionable (a CI gate fails on this).
    pub fn refuses_any(&self) -> bool {
        self.summary.refuses_any()
    }
}

/// Plans a whole proposed state: what `proposed` does, compared with `current`, to every
/// client. A changed server (its `policySelector`, its `allowedNamespaces`), policy,
/// client or namespace label moves clients as the operator would; a client removed is
/// listed among the changes, a client added is judged as the operator would judge it.
pub fn plan_states(current: &Inventory, proposed: &Inventory) -> StatePlan {
    let before: FxHashMap<ObjectRef, Evaluation> = current
        .evaluate_all()
        .into_iter()
        .map(|evaluation| (evaluation.client.clone(), evaluation))
        .collect();
    let mut clients = Vec::new();
    let mut summary = Summary::default();
    for after in proposed.evaluate_all() {
        let impact = match before.get(&after.client) {
            Some(before) => compare(before, &after),
            None => ClientImpact {
                client: after.client.clone(),
                kind: if after.compliance.is_provisionable() {
                    ImpactKind::Added
                } else {
                    ImpactKind::AddedRefused
                },
                changes: Vec::new(),
                new_violations: after.violations,
                resolved_violations: Vec::new(),
            },
        };
        let count = match impact.kind {
            ImpactKind::Breaks => &mut summary.breaks,
            ImpactKind::AddedRefused => &mut summary.added_refused,
            ImpactKind::Fixes => &mut summary.fixes,
            ImpactKind::Added => &mut summary.added,
            ImpactKind::Changes => &mut summary.changes,
            ImpactKind::ReasonsChange => &mut summary.reasons_change,
            ImpactKind::Unaffected => &mut summary.unaffected,
        };
        *count += 1;
        if impact.kind != ImpactKind::Unaffected {
            clients.push(impact);
        }
    }
    clients.sort_by(|a, b| (a.kind, &a.client).cmp(&(b.kind, &b.client)));
    let mut changes = Vec::new();
    changes.extend(object_changes(
        "AuthServer",
        &current.servers,
        &proposed.servers,
        |old, new| old.spec == new.spec,
    ));
    changes.extend(object_changes(
        "AuthPolicy",
        &current.policies,
        &proposed.policies,
        |old, new| old.spec == new.spec && labels_of(old) == labels_of(new),
    ));
    changes.extend(object_changes(
        "AuthClient",
        &current.clients,
        &proposed.clients,
        |old, new| old.spec == new.spec && labels_of(old) == labels_of(new),
    ));
    changes.extend(namespace_changes(&current.namespaces, &proposed.namespaces));
    StatePlan {
        changes,
        clients,
        summary,
    }
}

/// The objects of one kind added, removed, or changed (not `same`), by name.
fn object_changes<K: kube::Resource>(
    kind: &'static str,
    current: &[K],
    proposed: &[K],
    same: impl Fn(&K, &K) -> bool,
) -> Vec<ObjectChange> {
    let before: BTreeMap<ObjectRef, &K> = current.iter().map(|o| (ObjectRef::of(o), o)).collect();
    let after: BTreeMap<ObjectRef, &K> = proposed.iter().map(|o| (ObjectRef::of(o), o)).collect();
    let mut changes: Vec<ObjectChange> = after
        .iter()
        .filter_map(|(object, new)| {
            let change = match before.get(object) {
                None => Change::Added,
                Some(old) if !same(old, new) => Change::Changed,
                Some(_) => return None,
            };
            Some(ObjectChange {
                kind,
                object: object.clone(),
                change,
            })
        })
        .collect();
    changes.extend(
        before
            .keys()
            .filter(|object| !after.contains_key(*object))
            .map(|object| ObjectChange {
                kind,
                object: object.clone(),
                change: Change::Removed,
            }),
    );
    changes.sort();
    changes
}

/// Namespaces whose labels a proposed state adds, changes or removes.
fn namespace_changes(
    current: &BTreeMap<String, BTreeMap<String, String>>,
    proposed: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<ObjectChange> {
    let names: std::collections::BTreeSet<&String> =
        current.keys().chain(proposed.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let change = match (current.get(name), proposed.get(name)) {
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Removed,
                (Some(old), Some(new)) if old != new => Change::Changed,
                _ => return None,
            };
            Some(ObjectChange {
                kind: "Namespace",
                object: ObjectRef::new("", name.clone()),
                change,
            })
        })
        .collect()
}

/// A problem in the proposed policy text, at a line and column (1-based).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProposalError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ProposalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Reads proposed policy text: exactly one AuthPolicy, well-formed, every field valid.
pub fn parse_proposed_policy(text: &str) -> Result<AuthPolicy, Vec<ProposalError>> {
    let parsed = parse_documents(text, Path::new("(proposed policy)"));
    let mut errors: Vec<ProposalError> = parsed
        .errors
        .iter()
        .map(|error| ProposalError {
            line: error.line,
            column: error.column,
            message: error.message.clone(),
        })
        .collect();
    let mut policies =
        parsed
            .manifests
            .into_iter()
            .filter_map(|(manifest, origin)| match manifest {
                Manifest::Policy(policy) => Some((policy, origin)),
                _ => None,
            });
    let first = policies.next();
    if let Some((_, extra)) = policies.next() {
        errors.push(ProposalError {
            line: extra.line,
            column: 1,
            message: "only one AuthPolicy can be proposed at a time".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some((policy, origin)) = first else {
        return Err(vec![ProposalError {
            line: 1,
            column: 1,
            message:
                "no AuthPolicy here: expected apiVersion auth.nauthera.io/v1alpha1, kind AuthPolicy"
                    .into(),
        }]);
    };
    let field_errors = CompiledPolicy::compile(&policy).errors;
    if field_errors.is_empty() {
        return Ok(policy);
    }
    let document_text: String = text
        .lines()
        .skip(origin.line - 1)
        .collect::<Vec<_>>()
        .join("\n");
    Err(field_errors
        .into_iter()
        .map(|error| {
            let at = locate(&document_text, &error.field);
            ProposalError {
                line: origin.line + at.map_or(0, |l| l.line - 1),
                column: at.map_or(1, |l| l.column),
                message: error.to_string(),
            }
        })
        .collect())
}

/// Plans edits against one snapshot. Holds the current evaluations, so each keystroke
/// of an edit re-evaluates only the clients of servers that select the edited policy.
#[derive(Clone, Debug)]
pub struct Planner {
    inventory: Inventory,
    evaluator: Evaluator,
    prepared: Vec<PreparedClient>,
    current: Vec<Evaluation>,
    /// Client indices sorted by namespace and name: plans come out in this order
    /// without sorting on every keystroke.
    by_name: Vec<usize>,
    /// Per client, an index into `servers` and `namespaces`: looked up once here
    /// rather than hashed for every client on every keystroke.
    slots: Vec<(usize, usize)>,
    servers: Vec<ObjectRef>,
    namespaces: Vec<BTreeMap<String, String>>,
}

impl Planner {
    pub fn new(inventory: Inventory) -> Self {
        let evaluator = inventory.evaluator();
        let prepared: Vec<PreparedClient> =
            inventory.clients.iter().map(PreparedClient::new).collect();
        let current = inventory
            .clients
            .iter()
            .zip(&prepared)
            .map(|(client, prepared)| evaluator.evaluate_prepared(client, prepared))
            .collect();
        let mut by_name: Vec<usize> = (0..prepared.len()).collect();
        by_name.sort_by(|&a, &b| prepared[a].reference.cmp(&prepared[b].reference));
        let mut servers = Vec::new();
        let mut namespaces = Vec::new();
        let mut server_slots = FxHashMap::default();
        let mut namespace_slots = FxHashMap::default();
        let slots = prepared
            .iter()
            .map(|client| {
                let server = *server_slots.entry(&client.server).or_insert_with(|| {
                    servers.push(client.server.clone());
                    servers.len() - 1
                });
                let namespace = &client.reference.namespace;
                let namespace = *namespace_slots.entry(namespace).or_insert_with(|| {
                    namespaces.push(evaluator.namespace_labels(namespace).clone());
                    namespaces.len() - 1
                });
                (server, namespace)
            })
            .collect();
        Self {
            inventory,
            evaluator,
            prepared,
            current,
            by_name,
            slots,
            servers,
            namespaces,
        }
    }

    /// The snapshot being planned against.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Every client's current evaluation, in inventory order.
    pub fn current(&self) -> &[Evaluation] {
        &self.current
    }

    /// Plans replacing `original` (when editing an existing policy; `None` for a new one)
    /// with the policy written in `text`.
    pub fn plan_text(
        &self,
        original: Option<&ObjectRef>,
        text: &str,
    ) -> Result<Plan, Vec<ProposalError>> {
        let proposed = parse_proposed_policy(text)?;
        Ok(self.plan(original, Some(&proposed)))
    }

    /// Plans replacing `original` with `proposed`; `proposed: None` plans a deletion.
    pub fn plan(&self, original: Option<&ObjectRef>, proposed: Option<&AuthPolicy>) -> Plan {
        let after = self.evaluator.with_policy_replaced(original, proposed);
        let proposed_ref = proposed.map(ObjectRef::of);
        let touched: FxHashSet<&ObjectRef> = original
            .map(|policy| self.evaluator.servers_selecting(policy).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(
                proposed_ref
                    .iter()
                    .flat_map(|policy| after.servers_selecting(policy)),
            )
            .collect();
        // Per server slot: `None` when the edit cannot reach its clients.
        let reached: Vec<Option<Option<&CompiledServer>>> = self
            .servers
            .iter()
            .map(|server| touched.contains(server).then(|| after.server(server)))
            .collect();
        // One bucket per kind, filled in name order: the plan reads kind by kind.
        let mut buckets: [Vec<ClientImpact>; 4] = Default::default();
        for &index in &self.by_name {
            let (server_slot, namespace_slot) = self.slots[index];
            let Some(server) = reached[server_slot] else {
                continue;
            };
            let (client, prepared) = (&self.inventory.clients[index], &self.prepared[index]);
            let before = &self.current[index];
            // Most clients come out the same; only the others are worth a full evaluation.
            let labels = &self.namespaces[namespace_slot];
            let outcome = Evaluator::outcome_on(server, labels, client, prepared);
            let impact = match outcome.settings_changes_only(before) {
                Some(changes) if changes.is_empty() => continue,
                Some(changes) => ClientImpact {
                    client: prepared.reference.clone(),
                    kind: ImpactKind::Changes,
                    changes,
                    new_violations: Vec::new(),
                    resolved_violations: Vec::new(),
                },
                None if outcome.same_as(before) => continue,
                None => compare(before, &outcome.into_evaluation(client, prepared)),
            };
            let bucket = match impact.kind {
                ImpactKind::Breaks => 0,
                ImpactKind::Fixes => 1,
                ImpactKind::Changes => 2,
                ImpactKind::ReasonsChange => 3,
                // A policy edit adds no client.
                ImpactKind::AddedRefused | ImpactKind::Added | ImpactKind::Unaffected => continue,
            };
            buckets[bucket].push(impact);
        }
        let [breaks, fixes, changes, reasons_change] = buckets;
        let summary = Summary {
            breaks: breaks.len(),
            fixes: fixes.len(),
            changes: changes.len(),
            reasons_change: reasons_change.len(),
            unaffected: self.current.len()
                - breaks.len()
                - fixes.len()
                - changes.len()
                - reasons_change.len(),
            ..Summary::default()
        };
        let mut clients = breaks;
        clients.extend(fixes);
        clients.extend(changes);
        clients.extend(reasons_change);
        let policy = proposed_ref
            .or_else(|| original.cloned())
            .unwrap_or_else(|| ObjectRef::new("", ""));
        Plan {
            policy,
            clients,
            summary,
        }
    }
}

/// How one client's evaluation changes.
pub fn compare(before: &Evaluation, after: &Evaluation) -> ClientImpact {
    let new_violations: Vec<Violation> = after
        .violations
        .iter()
        .filter(|v| !before.violations.contains(v))
        .cloned()
        .collect();
    let resolved_violations: Vec<Violation> = before
        .violations
        .iter()
        .filter(|v| !after.violations.contains(v))
        .cloned()
        .collect();
    let mut changes = Vec::new();
    if before.governing != after.governing {
        changes.push(SettingChange {
            field: "policies",
            old: names(&before.governing),
            new: names(&after.governing),
        });
    }
    if let (Some(old), Some(new)) = (&before.effective, &after.effective) {
        changes.extend(setting_changes(old, new));
    }
    let kind = match (
        before.compliance.is_provisionable(),
        after.compliance.is_provisionable(),
    ) {
        (true, false) => ImpactKind::Breaks,
        (false, true) => ImpactKind::Fixes,
        (false, false) if new_violations.is_empty() && resolved_violations.is_empty() => {
            ImpactKind::Unaffected
        }
        (false, false) => ImpactKind::ReasonsChange,
        (true, true)
            if changes.is_empty()
                && new_violations.is_empty()
                && resolved_violations.is_empty() =>
        {
            ImpactKind::Unaffected
        }
        (true, true) => ImpactKind::Changes,
    };
    ClientImpact {
        client: after.client.clone(),
        kind,
        changes,
        new_violations,
        resolved_violations,
    }
}

fn names(policies: &[ObjectRef]) -> String {
    if policies.is_empty() {
        return "(none)".to_owned();
    }
    policies
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
