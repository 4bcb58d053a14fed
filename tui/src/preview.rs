//! `nauthera-tui preview`: the blast radius of a proposed policy, for CI and pull requests,
//! as text, Markdown (ready to post as a comment) or JSON.

use std::fmt::Write as _;

use nauthera_shared::impact::{ClientImpact, ImpactKind, Plan};
use serde::Serialize;

/// What a preview was computed against, for the banner.
#[derive(Clone, Debug, Serialize)]
pub struct Basis {
    /// `folder examples` or `context prod`.
    pub source: String,
    /// When the objects were read, RFC 3339.
    pub read_at: String,
    /// Whether the policy exists there (an edit) or not (a new policy).
    pub edit: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub fn render(plan: &Plan, basis: &Basis, format: Format) -> String {
    match format {
        Format::Text => text(plan, basis),
        Format::Markdown => markdown(plan, basis),
        Format::Json => json(plan, basis),
    }
}

fn what(basis: &Basis) -> &'static str {
    if basis.edit { "edited" } else { "new" }
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

fn text(plan: &Plan, basis: &Basis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Policy {} ({}), against {} read at {}",
        plan.policy,
        what(basis),
        basis.source,
        basis.read_at
    );
    let _ = writeln!(out);
    for impact in &plan.clients {
        let _ = writeln!(out, "  {} {}", impact.kind.symbol(), impact.client);
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

fn markdown(plan: &Plan, basis: &Basis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Nauthera policy preview: `{}` ({})",
        plan.policy,
        what(basis)
    );
    let _ = writeln!(out);
    if plan.breaks_any() {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> This policy would make {} client{} non-compliant: {} not be provisioned, and removed from the provider if already there.",
            plan.summary.breaks,
            if plan.summary.breaks == 1 { "" } else { "s" },
            if plan.summary.breaks == 1 {
                "it would"
            } else {
                "they would"
            },
        );
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

/// Table cells cannot hold pipes or newlines; code spans cannot hold backticks.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('`', "'")
        .replace('\n', " ")
}

fn json(plan: &Plan, basis: &Basis) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        basis: &'a Basis,
        summary_line: String,
        breaks_any: bool,
        #[serde(flatten)]
        plan: &'a Plan,
    }
    let report = Report {
        basis,
        summary_line: plan.summary.to_string(),
        breaks_any: plan.breaks_any(),
        plan,
    };
    let mut text = serde_json::to_string_pretty(&report)
        .unwrap_or_else(|error| format!("{{\"error\": {:?}}}", error.to_string()));
    text.push('\n');
    text
}
