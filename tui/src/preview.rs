//! `nauthera-tui preview`: the blast radius of a proposal (one policy, several, or a whole
//! proposed state such as a pull request's branch), for CI and pull requests, as text,
//! Markdown (ready to post as a comment) or JSON.

use std::fmt::Write as _;

use nauthera_shared::impact::{ClientImpact, ImpactKind, StatePlan};
use nauthera_shared::resources::ObjectRef;
use serde::Serialize;

/// What is proposed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proposal {
    /// Policies given one file each (`--policy`), and whether each exists already (an
    /// edit) or not (a new policy).
    Policies(Vec<ProposedPolicy>),
    /// A whole proposed state (`--head DIR`), e.g. a checkout of a pull request's branch.
    State { head: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct ProposedPolicy {
    pub policy: ObjectRef,
    pub edit: bool,
}

impl ProposedPolicy {
    fn what(&self) -> &'static str {
        if self.edit { "edited" } else { "new" }
    }
}

/// What a preview was computed against, for the banner.
#[derive(Clone, Debug, Serialize)]
pub struct Basis {
    pub proposal: Proposal,
    /// `folder examples` or `context prod`: the current state.
    pub source: String,
    /// When the objects were read, RFC 3339.
    pub read_at: String,
    /// What the preview could not see or read (namespaces RBAC hides, broken documents of
    /// the current state): the plan may be missing clients.
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub fn render(plan: &StatePlan, basis: &Basis, format: Format) -> String {
    match format {
        Format::Text => text(plan, basis),
        Format::Markdown => markdown(plan, basis),
        Format::Json => json(plan, basis),
    }
}

/// `Policy security/web-apps-policy (edited)`, `Policies a (edited), b (new)`, `Proposed
/// state folder pr/`; `code` wraps names as Markdown code.
fn title(proposal: &Proposal, code: bool) -> String {
    let name = |text: String| {
        if code { format!("`{text}`") } else { text }
    };
    match proposal {
        Proposal::Policies(policies) => {
            let each: Vec<String> = policies
                .iter()
                .map(|p| format!("{} ({})", name(p.policy.to_string()), p.what()))
                .collect();
            let noun = if policies.len() == 1 {
                "Policy"
            } else {
                "Policies"
            };
            format!("{noun} {}", each.join(", "))
        }
        Proposal::State { head } => format!("Proposed state {}", name(head.clone())),
    }
}

/// Whether the changes list says more than the title: a proposal of policies whose
/// changes are exactly those policies needs no list.
fn lists_changes(plan: &StatePlan, basis: &Basis) -> bool {
    match &basis.proposal {
        Proposal::Policies(policies) => {
            plan.changes.len() != policies.len()
                || plan
                    .changes
                    .iter()
                    .any(|change| change.kind != "AuthPolicy")
        }
        Proposal::State { .. } => true,
    }
}

/// The lines under a client: the settings that change, the reasons it breaks.
fn details(impact: &ClientImpact) -> Vec<String> {
    let mut lines: Vec<String> = impact.changes.iter().map(ToString::to_string).collect();
    for violation in &impact.new_violations {
        let audit = if violation.is_enforced() {
            ""
        } else {
            " (audit only)"
        };
        lines.push(format!("{}: {}{audit}", violation.field, violation.message));
    }
    for violation in &impact.resolved_violations {
        lines.push(format!(
            "resolved: {}: {}",
            violation.field, violation.message
        ));
    }
    lines
}

fn text(plan: &StatePlan, basis: &Basis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}, against {} read at {}",
        title(&basis.proposal, false),
        basis.source,
        basis.read_at
    );
    for warning in &basis.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    if lists_changes(plan, basis) {
        let _ = writeln!(out);
        if plan.changes.is_empty() {
            let _ = writeln!(out, "No object changes.");
        } else {
            let _ = writeln!(out, "Changes:");
        }
        for change in &plan.changes {
            let _ = writeln!(out, "  {change}");
        }
    }
    let _ = writeln!(out);
    for impact in &plan.clients {
        let _ = writeln!(
            out,
            "  {} {}{}",
            impact.kind.symbol(),
            impact.client,
            new_mark(impact)
        );
        for line in details(impact) {
            let _ = writeln!(out, "      {line}");
        }
    }
    if !plan.clients.is_empty() {
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{}", plan.summary);
    out
}

fn new_mark(impact: &ClientImpact) -> &'static str {
    match impact.kind {
        ImpactKind::Added => " (new)",
        ImpactKind::AddedRefused => " (new, refused)",
        _ => "",
    }
}

fn markdown(plan: &StatePlan, basis: &Basis) -> String {
    let mut out = String::new();
    let heading = match &basis.proposal {
        Proposal::Policies(_) => "Nauthera policy preview",
        Proposal::State { .. } => "Nauthera preview",
    };
    let what = title(&basis.proposal, true);
    let what = what
        .strip_prefix("Policy ")
        .or_else(|| what.strip_prefix("Policies "))
        .or_else(|| what.strip_prefix("Proposed state "))
        .unwrap_or(&what);
    let _ = writeln!(out, "### {heading}: {what}");
    let _ = writeln!(out);
    if plan.refuses_any() {
        let _ = writeln!(out, "> [!CAUTION]\n> {}", caution(plan, basis));
        let _ = writeln!(out);
    }
    if !basis.warnings.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        for warning in &basis.warnings {
            let _ = writeln!(out, "> {}", escape_cell(warning));
        }
        let _ = writeln!(out);
    }
    if lists_changes(plan, basis) && !plan.changes.is_empty() {
        let _ = writeln!(out, "Changes:");
        for change in &plan.changes {
            let _ = writeln!(
                out,
                "- `{}` {} `{}`",
                change.change.symbol(),
                change.kind,
                if change.kind == "Namespace" {
                    change.object.name.clone()
                } else {
                    change.object.to_string()
                }
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "**{}**", plan.summary);
    let _ = writeln!(out);
    if !plan.clients.is_empty() {
        let _ = writeln!(out, "| | Client | What happens |");
        let _ = writeln!(out, "|---|---|---|");
        for impact in &plan.clients {
            let verdict = match impact.kind {
                ImpactKind::Breaks => "becomes non-compliant",
                ImpactKind::AddedRefused => "new, would be refused",
                ImpactKind::Fixes => "becomes compliant",
                ImpactKind::Added => "new, would be provisioned",
                ImpactKind::Changes => "changes settings",
                ImpactKind::ReasonsChange => "stays non-compliant, for new reasons",
                ImpactKind::Unaffected => "unaffected",
            };
            let mut cell = verdict.to_owned();
            for line in details(impact) {
                let _ = write!(cell, "<br>`{}`", escape_cell(&line));
            }
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {cell} |",
                impact.kind.symbol(),
                impact.client
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "<sub>Computed by `nauthera-tui preview` against {} read at {}.</sub>",
        basis.source, basis.read_at
    );
    out
}

/// Why the gate fails, in one sentence.
fn caution(plan: &StatePlan, basis: &Basis) -> String {
    let subject = match &basis.proposal {
        Proposal::Policies(policies) if policies.len() == 1 => "This policy",
        Proposal::Policies(_) => "These policies",
        Proposal::State { .. } => "This change",
    };
    let clients = |n: usize| format!("{n} client{}", if n == 1 { "" } else { "s" });
    let summary = plan.summary;
    let mut what = Vec::new();
    if summary.breaks > 0 {
        what.push(format!(
            "make {} non-compliant: the operator would withhold their changes, and a policy with `violationResponse: Revoke` would remove their registration",
            clients(summary.breaks)
        ));
    }
    if summary.added_refused > 0 {
        what.push(format!(
            "add {} that would be refused",
            clients(summary.added_refused)
        ));
    }
    format!("{subject} would {}.", what.join(", and "))
}

/// Table cells cannot hold pipes or newlines; code spans cannot hold backticks.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('`', "'")
        .replace('\n', " ")
}

fn json(plan: &StatePlan, basis: &Basis) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        basis: &'a Basis,
        summary_line: String,
        breaks_any: bool,
        #[serde(flatten)]
        plan: &'a StatePlan,
    }
    let report = Report {
        basis,
        summary_line: plan.summary.to_string(),
        breaks_any: plan.refuses_any(),
        plan,
    };
    let mut text = serde_json::to_string_pretty(&report)
        .unwrap_or_else(|error| format!("{{\"error\": {:?}}}", error.to_string()));
    text.push('\n');
    text
}
