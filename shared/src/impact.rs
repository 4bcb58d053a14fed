//! The impact (blast-radius) engine: what a proposed policy would do to every client,
//! before it is committed, in the spirit of `terraform plan`.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::inventory::Inventory;
use crate::manifests::{Manifest, parse_documents};
use crate::policy::{
    CompiledPolicy, Evaluation, Evaluator, SettingChange, Violation, setting_changes,
};
use crate::resources::{AuthPolicy, ObjectRef};
use crate::yaml_location::locate;

/// What a policy edit does to one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ImpactKind {
    /// Provisionable now, not after the edit (`-`).
    Breaks,
    /// Not provisionable now, provisionable after the edit (`+`).
    Fixes,
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
            Self::Fixes => '+',
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
        self.summary.breaks > 0
    }
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
    current: Vec<Evaluation>,
}

impl Planner {
    pub fn new(inventory: Inventory) -> Self {
        let evaluator = inventory.evaluator();
        let current = inventory
            .clients
            .iter()
            .map(|client| evaluator.evaluate(client))
            .collect();
        Self {
            inventory,
            evaluator,
            current,
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
        let touched_servers: HashSet<&ObjectRef> = original
            .map(|policy| self.evaluator.servers_selecting(policy).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(
                proposed_ref
                    .iter()
                    .flat_map(|policy| after.servers_selecting(policy)),
            )
            .collect();
        let mut clients = Vec::new();
        for (client, before) in self.inventory.clients.iter().zip(&self.current) {
            if !touched_servers.contains(&before.server) {
                continue;
            }
            let impact = compare(before, &after.evaluate(client));
            if impact.kind != ImpactKind::Unaffected {
                clients.push(impact);
            }
        }
        clients.sort_by(|a, b| (a.kind, &a.client).cmp(&(b.kind, &b.client)));
        let mut summary = Summary {
            unaffected: self.current.len() - clients.len(),
            ..Summary::default()
        };
        for impact in &clients {
            match impact.kind {
                ImpactKind::Breaks => summary.breaks += 1,
                ImpactKind::Fixes => summary.fixes += 1,
                ImpactKind::Changes => summary.changes += 1,
                ImpactKind::ReasonsChange => summary.reasons_change += 1,
                ImpactKind::Unaffected => {}
            }
        }
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
