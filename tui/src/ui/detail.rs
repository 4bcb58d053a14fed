//! The detail pane: everything about the selected node, in words. Secrets appear by name
//! only: the dashboard never reads their values.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use nauthera_shared::policy::{EffectiveSettings, default_secret_name};
use nauthera_shared::resources::{Condition, ObjectRef};

use super::Theme;
use crate::app::App;
use crate::model::{Counts, World};
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
        Target::Client(index) => client(&mut out, world, index),
        Target::Policy(index) => policy(&mut out, world, index, app),
        Target::Server(index) => server(&mut out, world, index),
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

fn client(out: &mut Lines, world: &World, index: usize) {
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
    let secret = client.spec.secret_name.clone().unwrap_or_else(|| {
        default_secret_name(client.metadata.name.as_deref().unwrap_or_default())
    });
    out.field("Secret", format!("{secret} (values never shown)"));
    if let Some(id) = client.status.as_ref().and_then(|s| s.client_id.clone()) {
        out.field("Client ID", id);
    }
    if let Some(status) = &client.status {
        conditions(out, &status.conditions);
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

fn conditions(out: &mut Lines, conditions: &[Condition]) {
    if conditions.is_empty() {
        return;
    }
    out.section("Conditions");
    for condition in conditions {
        let mut text = format!("{} {}", condition.type_, condition.status);
        if !condition.reason.is_empty() {
            let _ = write!(text, " · {}", condition.reason);
        }
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

fn server(out: &mut Lines, world: &World, index: usize) {
    let server = &world.inventory().servers[index];
    let reference = ObjectRef::of(server);
    out.title("AuthServer", reference.to_string());
    out.field("Issuer", server.spec.issuer_url.clone());
    out.field(
        "Provider",
        format!("{:?}", server.spec.provider.provider_type),
    );
    let reachability = match (&server.status, world.snapshot.live) {
        (_, false) => "not checked (read from a folder)".to_owned(),
        (None, true) => "unknown: the operator has not reported yet".to_owned(),
        (Some(status), true) => status
            .conditions
            .iter()
            .find(|c| c.type_ == "ProviderReachable")
            .map_or_else(
                || "unknown".to_owned(),
                |c| format!("{} {}: {}", c.type_, c.status, c.message),
            ),
    };
    out.field("Reachability", reachability);
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
    out.section("Spec");
    yaml_block(out, &server.spec);
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
