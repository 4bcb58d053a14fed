//! The detail pane: everything about the selected node, in words. Secrets appear by name
//! only: the dashboard never reads their values.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use k8s_openapi::jiff::Timestamp;
use nauthera_shared::policy::{EffectiveSettings, default_secret_name};
use nauthera_shared::resources::{AuthClient, AuthServer, Condition, ObjectRef};

use super::Theme;
use crate::app::App;
use crate::model::{Counts, ObjectEvents, World};
use crate::tree::{Group, Row, Target};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered()
        .title(" Detail ")
        .border_style(theme.border());
    let lines = match (&app.world, app.selected_row()) {
        (Some(world), Some(row)) => lines(world, row, app, theme),
        (Some(world), None) if !world.snapshot.problems.is_empty() => world
            .snapshot
            .problems
            .iter()
            .map(|problem| Line::from(Span::styled(format!("! {problem}"), theme.error())))
            .collect(),
        _ => Vec::new(),
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn lines(world: &World, row: &Row, app: &App, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Lines {
        lines: Vec::new(),
        theme,
    };
    match row.target {
        Target::Client(index) => client(&mut out, world, index, app),
        Target::Policy(index) => policy(&mut out, world, index, app),
        Target::Server(index) => server(&mut out, world, index, app.now),
        Target::Group(group) => group_detail(&mut out, world, group, row),
    }
    out.lines
}

/// Lines under construction, with the theme to style them.
struct Lines {
    lines: Vec<Line<'static>>,
    theme: Theme,
}

impl Lines {
    fn title(&mut self, kind: &str, name: String) {
        self.lines.push(Line::from(vec![
            Span::styled(format!("{kind} "), self.theme.dim()),
            Span::styled(name, self.theme.heading()),
        ]));
    }

    fn field(&mut self, name: &str, value: impl Into<String>) {
        self.styled_field(name, value, Style::new());
    }

    fn styled_field(&mut self, name: &str, value: impl Into<String>, style: Style) {
        self.lines.push(Line::from(vec![
            Span::styled(format!("{name:<13}"), self.theme.dim()),
            Span::styled(value.into(), style),
        ]));
    }

    fn section(&mut self, name: &str) {
        self.lines.push(Line::default());
        self.lines.push(Line::from(Span::styled(
            name.to_owned(),
            self.theme.heading(),
        )));
    }

    fn text(&mut self, text: impl Into<String>, style: Style) {
        self.lines
            .push(Line::from(Span::styled(text.into(), style)));
    }
}

fn client(out: &mut Lines, world: &World, index: usize, app: &App) {
    let client = &world.inventory().clients[index];
    let evaluation = &world.evaluations[index];
    let state = world.client_state(index);
    let theme = out.theme;
    out.title("AuthClient", evaluation.client.to_string());
    out.styled_field(
        "State",
        format!("{} {}", state.symbol(), state.name()),
        theme.state(state),
    );
    if !client.spec.display_name.is_empty() {
        out.field("Display name", client.spec.display_name.clone());
    }
    out.field("Server", evaluation.server.to_string());
    out.field("Policies", names(&evaluation.governing));
    // The operator's record first: it names the Secret it wrote.
    let secret = client
        .status
        .as_ref()
        .and_then(|s| s.client_secret_ref.as_ref())
        .map(|secret| secret.name.clone())
        .or_else(|| client.spec.secret_name.clone())
        .unwrap_or_else(|| {
            default_secret_name(client.metadata.name.as_deref().unwrap_or_default())
        });
    out.field("Secret", format!("{secret} (values never shown)"));
    if let Some(id) = client.status.as_ref().and_then(|s| s.client_id.clone()) {
        out.field("Client ID", format!("{id} (at the provider)"));
    }
    if world.snapshot.live {
        out.field("Reconciled", reconciled(client, app.now));
    }
    if let Some(status) = &client.status {
        conditions(out, &status.conditions, app.now);
    }
    if !evaluation.violations.is_empty() {
        out.section("Violations");
        for violation in &evaluation.violations {
            let style = if violation.is_enforced() {
                theme.state(crate::model::State::NonCompliant)
            } else {
                theme.state(crate::model::State::Audit)
            };
            let policy = violation.policy.as_deref().unwrap_or("Nauthera");
            let audit = if violation.is_enforced() {
                ""
            } else {
                " (audit)"
            };
            out.text(
                format!("{} · {} · {policy}{audit}", violation.field, violation.rule),
                style,
            );
            out.text(format!("  {}", violation.message), Style::new());
        }
    }
    if let Some(effective) = &evaluation.effective {
        out.section("Effective settings");
        effective_settings(out, effective);
    }
    if world.snapshot.live {
        events(out, app.events.as_ref(), app.now);
    }
}

/// Which generation the operator last reported on, and when it last wrote the status (the
/// time the API server recorded for that write in `managedFields`).
fn reconciled(client: &AuthClient, now: Timestamp) -> String {
    let Some(status) = &client.status else {
        return "not yet: the operator has not reported on this client".to_owned();
    };
    let generation = client.metadata.generation;
    let mut text = match (status.observed_generation, generation) {
        (Some(observed), Some(current)) if observed >= current => {
            format!("generation {observed} (current)")
        }
        (Some(observed), Some(current)) => {
            format!("generation {observed} of {current} (the operator is behind)")
        }
        (Some(observed), None) => format!("generation {observed}"),
        (None, _) => "no generation reported".to_owned(),
    };
    let written = client
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.as_deref() == Some("status"))
        .filter_map(|entry| Some((entry.time.as_ref()?.0, entry.manager.clone())))
        .max_by_key(|(time, _)| *time);
    if let Some((time, manager)) = written {
        let _ = write!(text, " · status written {} ago", age(time, now));
        if let Some(manager) = manager {
            let _ = write!(text, " by {manager}");
        }
    }
    text
}

/// The client's recent Events, as `kubectl describe` lists them; a forbidden read says so.
fn events(out: &mut Lines, events: Option<&ObjectEvents>, now: Timestamp) {
    out.section("Events");
    let Some(events) = events else {
        out.text("reading…", out.theme.dim());
        return;
    };
    match &events.events {
        Err(problem) => out.text(problem.clone(), out.theme.error()),
        Ok(recent) if recent.is_empty() => out.text(
            "none (Kubernetes keeps Events for an hour by default)",
            out.theme.dim(),
        ),
        Ok(recent) => {
            for event in recent {
                let when = match (event.last, event.first) {
                    (Some(last), Some(first)) if event.count > 1 => format!(
                        "{} (x{} over {})",
                        age(last, now),
                        event.count,
                        age(first, now)
                    ),
                    (Some(last), _) => age(last, now),
                    (None, _) => "?".to_owned(),
                };
                let style = if event.type_ == "Warning" {
                    out.theme.state(crate::model::State::Audit)
                } else {
                    Style::new()
                };
                out.text(
                    format!("{} {} · {when} · {}", event.type_, event.reason, event.from),
                    style,
                );
                if !event.message.is_empty() {
                    out.text(format!("  {}", event.message), out.theme.dim());
                }
            }
        }
    }
}

/// How long ago `since` was, the way kubectl prints ages (`45s`, `5m10s`, `3h`, `2d4h`).
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let seconds = (now.as_second() - since.as_second()).max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    // A remainder of zero is left out, as kubectl does (`3d`, not `3d0h`).
    let and = |whole: String, rest: i64, unit: &str| {
        if rest == 0 {
            whole
        } else {
            format!("{whole}{rest}{unit}")
        }
    };
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => and(format!("{minutes}m"), s % 60, "s"),
        s if s < 3 * 3600 => format!("{minutes}m"),
        s if s < 8 * 3600 => and(format!("{hours}h"), minutes % 60, "m"),
        s if s < 48 * 3600 => format!("{hours}h"),
        s if s < 8 * 86_400 => and(format!("{days}d"), hours % 24, "h"),
        _ => format!("{days}d"),
    }
}

fn effective_settings(out: &mut Lines, settings: &EffectiveSettings) {
    let lifetime = |value: Option<nauthera_shared::duration::Lifetime>| {
        value.map_or_else(|| "provider default".to_owned(), |l| l.to_string())
    };
    out.field("scopes", settings.scopes.join(", "));
    out.field(
        "grantTypes",
        settings
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    if !settings.redirect_uris.is_empty() {
        out.field("redirectUris", settings.redirect_uris.join(", "));
    }
    out.field("clientType", format!("{:?}", settings.client_type));
    out.field("authMethod", settings.token_endpoint_auth_method.as_str());
    out.field("requirePKCE", settings.require_pkce.to_string());
    out.field("accessTTL", lifetime(settings.access_token_ttl));
    out.field("refreshTTL", lifetime(settings.refresh_token_ttl));
    out.field("idTokenTTL", lifetime(settings.id_token_ttl));
    out.field(
        "rotation",
        settings
            .secret_rotation_schedule
            .clone()
            .unwrap_or_else(|| "never".to_owned()),
    );
}

fn conditions(out: &mut Lines, conditions: &[Condition], now: Timestamp) {
    if conditions.is_empty() {
        return;
    }
    out.section("Conditions");
    for condition in conditions {
        let mut text = format!("{} {}", condition.type_, condition.status);
        if !condition.reason.is_empty() {
            let _ = write!(text, " · {}", condition.reason);
        }
        let _ = write!(text, " · {}", age(condition.last_transition_time.0, now));
        out.text(text, Style::new());
        if !condition.message.is_empty() {
            out.text(format!("  {}", condition.message), out.theme.dim());
        }
    }
}

fn policy(out: &mut Lines, world: &World, index: usize, app: &App) {
    let policy = &world.inventory().policies[index];
    let reference = ObjectRef::of(policy);
    out.title("AuthPolicy", reference.to_string());
    out.field("Enforcement", format!("{:?}", policy.spec.enforcement));
    let servers: Vec<String> = world
        .evaluator
        .servers_selecting(&reference)
        .map(ToString::to_string)
        .collect();
    out.field(
        "Selected by",
        if servers.is_empty() {
            "no server".to_owned()
        } else {
            servers.join(", ")
        },
    );
    let mut governed: Vec<usize> = world
        .evaluations
        .iter()
        .enumerate()
        .filter(|(_, evaluation)| evaluation.governing.contains(&reference))
        .filter(|(_, evaluation)| {
            app.namespace
                .as_deref()
                .is_none_or(|ns| evaluation.client.namespace == ns)
        })
        .map(|(index, _)| index)
        .collect();
    governed.sort_by(|&a, &b| {
        world.evaluations[a]
            .client
            .cmp(&world.evaluations[b].client)
    });
    let mut counts = Counts::default();
    for &client in &governed {
        counts.add(world.client_state(client));
    }
    out.field("Governs", counts.to_string());
    if let Some(compiled) = world.evaluator.policy(&reference)
        && !compiled.errors.is_empty()
    {
        out.section("Errors");
        for error in &compiled.errors {
            out.text(error.to_string(), out.theme.error());
        }
    }
    out.section("Rules");
    yaml_block(out, &policy.spec);
    out.section("Clients");
    for client in governed {
        let state = world.client_state(client);
        out.lines.push(Line::from(vec![
            Span::styled(state.symbol(), out.theme.state(state)),
            Span::raw(format!(" {}", world.evaluations[client].client)),
        ]));
    }
}

fn server(out: &mut Lines, world: &World, index: usize, now: Timestamp) {
    let server = &world.inventory().servers[index];
    let reference = ObjectRef::of(server);
    out.title("AuthServer", reference.to_string());
    out.field("Issuer", server.spec.issuer_url.clone());
    out.field(
        "Provider",
        format!("{:?}", server.spec.provider.provider_type),
    );
    provider_health(out, server, world.snapshot.live, now);
    let Some(compiled) = world.evaluator.server(&reference) else {
        return;
    };
    let policies: Vec<ObjectRef> = compiled
        .policies()
        .iter()
        .map(|p| p.reference.clone())
        .collect();
    out.field("Policies", names(&policies));
    let allowed = &server.spec.allowed_namespaces;
    let mut trust = format!("{:?}", allowed.from);
    if let Some(selector) = &allowed.selector {
        for (key, value) in selector.match_labels.iter().flatten() {
            let _ = write!(trust, " {key}={value}");
        }
        for expression in selector.match_expressions.iter().flatten() {
            let values = expression.values.as_deref().unwrap_or_default().join(",");
            let _ = write!(
                trust,
                " {} {} ({values})",
                expression.key, expression.operator
            );
        }
    }
    out.field("Trusts", trust);
    let namespaces: BTreeSet<&str> = world
        .inventory()
        .namespaces
        .keys()
        .map(String::as_str)
        .chain(
            world
                .evaluations
                .iter()
                .map(|e| e.client.namespace.as_str()),
        )
        .collect();
    let trusted: Vec<&str> = namespaces
        .into_iter()
        .filter(|ns| {
            compiled
                .trusts(ns, world.evaluator.namespace_labels(ns))
                .is_ok()
        })
        .collect();
    out.field(
        "Namespaces",
        if trusted.is_empty() {
            "none known".to_owned()
        } else {
            trusted.join(", ")
        },
    );
    if !compiled.errors.is_empty() {
        out.section("Errors");
        for error in &compiled.errors {
            out.text(error.to_string(), out.theme.error());
        }
    }
    if let Some(status) = &server.status {
        conditions(out, &status.conditions, now);
    }
    out.section("Spec");
    yaml_block(out, &server.spec);
}

/// Whether the operator reaches the provider, since when, and how fast it answered.
fn provider_health(out: &mut Lines, server: &AuthServer, live: bool, now: Timestamp) {
    let theme = out.theme;
    let status = match (&server.status, live) {
        (_, false) => {
            out.field("Reachability", "not checked (read from a folder)");
            return;
        }
        (None, true) => {
            out.field("Reachability", "unknown: the operator has not reported yet");
            return;
        }
        (Some(status), true) => status,
    };
    match status
        .conditions
        .iter()
        .find(|c| c.type_ == "ProviderReachable")
    {
        Some(condition) => {
            let (words, state) = match condition.status.as_str() {
                "True" => ("✔ reachable", crate::model::State::Compliant),
                "False" => ("‼ unreachable", crate::model::State::Error),
                _ => ("◌ unknown", crate::model::State::Pending),
            };
            out.styled_field(
                "Reachability",
                format!("{words} for {}", age(condition.last_transition_time.0, now)),
                theme.state(state),
            );
        }
        None => out.field("Reachability", "unknown: not reported"),
    }
    out.field(
        "Latency",
        status.provider_latency_ms.map_or_else(
            || "not reported".to_owned(),
            |ms| format!("{ms} ms (discovery document)"),
        ),
    );
    if let Some(endpoint) = &status.registration_endpoint {
        out.field("Registration", endpoint.clone());
    }
}

fn group_detail(out: &mut Lines, world: &World, group: Group, row: &Row) {
    out.title("Group", group.title().to_owned());
    out.text(group.explanation(), Style::new());
    if let Some(counts) = row.counts {
        out.field("Holds", counts.to_string());
    }
    if group == Group::UnselectedPolicies {
        return;
    }
    out.section("Why");
    for (index, evaluation) in world.evaluations.iter().enumerate() {
        let in_group = match group {
            Group::MissingServer => {
                evaluation.standing == nauthera_shared::policy::Standing::ServerNotFound
            }
            Group::InvalidServer => {
                evaluation.standing == nauthera_shared::policy::Standing::ServerInvalid
            }
            Group::UntrustedNamespace => {
                evaluation.standing == nauthera_shared::policy::Standing::NamespaceNotTrusted
            }
            Group::NoPolicy => {
                evaluation.standing == nauthera_shared::policy::Standing::NoGoverningPolicy
            }
            Group::UnselectedPolicies => false,
        };
        if in_group {
            let state = world.client_state(index);
            out.lines.push(Line::from(vec![
                Span::styled(state.symbol(), out.theme.state(state)),
                Span::raw(format!(" {}", evaluation.client)),
            ]));
            if let Some(violation) = evaluation.violations.first() {
                out.text(format!("  {}", violation.message), out.theme.dim());
            }
        }
    }
}

fn yaml_block(out: &mut Lines, value: &impl serde::Serialize) {
    let text = serde_yaml_ng::to_string(value).unwrap_or_else(|error| error.to_string());
    for line in text.lines() {
        out.text(format!("  {line}"), Style::new());
    }
}

fn names(references: &[ObjectRef]) -> String {
    if references.is_empty() {
        return "none".to_owned();
    }
    references
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::age;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn ages_read_like_kubectl() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let ago = |seconds: i64| age(Timestamp::from_second(1_000_000 - seconds).unwrap(), now);
        assert_eq!(ago(0), "0s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(310), "5m10s");
        assert_eq!(ago(45 * 60), "45m");
        assert_eq!(ago(5 * 3600 + 120), "5h2m");
        assert_eq!(ago(30 * 3600), "30h");
        assert_eq!(ago(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(ago(3 * 86_400), "3d");
        assert_eq!(ago(300), "5m");
        assert_eq!(ago(4 * 3600), "4h");
        assert_eq!(ago(40 * 86_400), "40d");
        assert_eq!(ago(-5), "0s", "a clock a little behind the server's");
    }
}
