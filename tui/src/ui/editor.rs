//! The editor screen: a banner saying what the preview is based on, the YAML beside the
//! impact panel, and a line for errors, prompts and keys.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use nauthera_shared::impact::{ClientImpact, ImpactKind};

use super::{Theme, centered};
use crate::editor::{CommitTarget, Editor, Prompt};
use crate::model::State;

const KEYS: &str = " ctrl-s commit · esc leave · ctrl-z/ctrl-r undo/redo · ctrl-f search · ctrl-n/ctrl-p next/previous client";

pub fn draw(frame: &mut Frame, area: Rect, editor: &Editor, theme: Theme) {
    let [banner, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(banner_line(editor, theme)), banner);
    let [text_area, impact_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);

    let mut widget = editor.textarea.clone();
    let title = match &editor.target {
        CommitTarget::Folder { file, .. } => format!(" {} ", short_path(file)),
        CommitTarget::Cluster { .. } => format!(" {} ", editor.policy),
    };
    let modified = if editor.is_modified() { "● " } else { "" };
    widget.set_block(
        Block::bordered()
            .title(format!("{modified}{}", title.trim_start()))
            .border_style(theme.emphasis()),
    );
    frame.render_widget(&widget, text_area);
    impact(frame, impact_area, editor, theme);
    frame.render_widget(Paragraph::new(status_line(editor, theme)), status);
    if editor.prompt == Some(Prompt::Commit) {
        confirm_commit(frame, body, editor, theme);
    }
}

fn banner_line(editor: &Editor, theme: Theme) -> Line<'static> {
    let mut spans = vec![
        Span::styled(
            format!(" Editing {} ", editor.policy),
            theme.status_source(),
        ),
        Span::raw(format!(
            " preview against {} read at {}",
            editor.source,
            editor.read_at().format("%H:%M:%S")
        )),
    ];
    if editor.readonly {
        spans.push(Span::styled(" · read-only", theme.error()));
    }
    Line::from(spans)
}

fn impact(frame: &mut Frame, area: Rect, editor: &Editor, theme: Theme) {
    let preview = &editor.preview;
    let title = if preview.stale && preview.plan.is_some() {
        " Impact (stale: the text has changed) "
    } else {
        " Impact "
    };
    let block = Block::bordered().title(title).border_style(theme.border());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = Vec::new();
    for error in &preview.errors {
        lines.push(Line::from(Span::styled(
            format!("✖ {error}"),
            theme.error(),
        )));
    }
    let coverage = editor.basis.coverage().map(|(text, warning)| {
        if warning {
            Line::from(Span::styled(format!("⚠ {text}"), theme.error()))
        } else {
            Line::from(Span::styled(text, theme.dim()))
        }
    });
    let Some(plan) = &preview.plan else {
        if lines.is_empty() {
            lines.push(coverage.unwrap_or_else(|| Line::styled("Planning…", theme.dim())));
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    };
    let summary_style = if preview.stale {
        theme.dim()
    } else {
        theme.heading()
    };
    lines.push(Line::from(Span::styled(
        plan.summary.to_string(),
        summary_style,
    )));
    lines.extend(coverage);
    lines.push(Line::default());
    for (index, client) in plan.clients.iter().enumerate() {
        let mut line = Line::from(vec![
            Span::styled(
                client.kind.symbol().to_string(),
                kind_style(client.kind, theme),
            ),
            Span::raw(format!(" {}", client.client)),
        ]);
        if index == editor.selected {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    if let Some(selected) = plan.clients.get(editor.selected) {
        lines.push(Line::default());
        lines.extend(why(selected, theme));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The settings diff, or the reasons, of one affected client.
fn why(client: &ClientImpact, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        client.client.to_string(),
        theme.heading(),
    ))];
    for change in &client.changes {
        lines.push(Line::from(vec![
            Span::raw(format!("  ~ {} ", change.field)),
            Span::styled(change.old.clone(), theme.dim()),
            Span::raw(" → "),
            Span::styled(change.new.clone(), theme.emphasis()),
        ]));
    }
    for violation in &client.new_violations {
        lines.push(Line::from(Span::styled(
            format!(
                "  - {} ({}): {}",
                violation.field, violation.rule, violation.message
            ),
            theme.state(State::NonCompliant),
        )));
    }
    for violation in &client.resolved_violations {
        lines.push(Line::from(Span::styled(
            format!("  + resolved {}: {}", violation.field, violation.message),
            theme.state(State::Compliant),
        )));
    }
    lines
}

fn kind_style(kind: ImpactKind, theme: Theme) -> Style {
    match kind {
        ImpactKind::Breaks | ImpactKind::AddedRefused => theme.state(State::NonCompliant),
        ImpactKind::Fixes | ImpactKind::Added => theme.state(State::Compliant),
        ImpactKind::Changes => theme.state(State::Audit),
        ImpactKind::ReasonsChange | ImpactKind::Unaffected => theme.dim(),
    }
}

fn status_line(editor: &Editor, theme: Theme) -> Line<'static> {
    match &editor.prompt {
        Some(Prompt::Leave) => Line::from(Span::styled(
            " Unsaved edits will be lost. Leave the editor? (y/n)",
            theme.error(),
        )),
        Some(Prompt::Search(query)) => Line::from(vec![
            Span::styled(" search: ", theme.emphasis()),
            Span::raw(query.clone()),
            Span::styled("▏  enter find · esc cancel · ctrl-g next", theme.dim()),
        ]),
        Some(Prompt::Commit) => Line::from(Span::styled(" Commit? (y/n)", theme.emphasis())),
        None => match (&editor.message, editor.preview.errors.first()) {
            (Some(message), _) => Line::from(Span::styled(
                format!(" {}", message.text),
                if message.error {
                    theme.error()
                } else {
                    theme.emphasis()
                },
            )),
            (None, Some(error)) => Line::from(Span::styled(format!(" ✖ {error}"), theme.error())),
            (None, None) => Line::from(Span::styled(KEYS, theme.dim())),
        },
    }
}

/// The confirmation dialog's width, in columns, where the screen has them.
const CONFIRM_WIDTH: u16 = 70;

fn confirm_commit(frame: &mut Frame, area: Rect, editor: &Editor, theme: Theme) {
    let summary = editor
        .preview
        .plan
        .as_ref()
        .map(|plan| plan.summary.to_string())
        .unwrap_or_default();
    let destination = match &editor.target {
        CommitTarget::Folder { file, .. } => format!("Write it to {}", file.display()),
        CommitTarget::Cluster { context, .. } => format!(
            "Replace it on context {context}: a dry run, then a replace guarded by resourceVersion {}, then a read back",
            editor.target.resource_version().unwrap_or("(none)")
        ),
    };
    let breaks = editor
        .preview
        .plan
        .as_ref()
        .is_some_and(nauthera_shared::impact::Plan::breaks_any);
    let mut lines = vec![
        Line::from(Span::styled(
            format!("Commit {}?", editor.policy),
            theme.heading(),
        )),
        Line::default(),
        Line::from(summary),
        Line::default(),
        Line::from(destination),
    ];
    if let Some((text, true)) = editor.basis.coverage() {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(format!("⚠ {text}"), theme.error())));
    }
    if breaks {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            "Clients will become non-compliant: the operator withholds their changes, and a policy with violationResponse: Revoke removes their registration.",
            theme.error(),
        )));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "y commit · any other key cancels",
        theme.key(),
    )));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::bordered()
            .title(" Confirm ")
            .border_style(theme.emphasis()),
    );
    // As tall as the text once wrapped (a context's or a file's name can be long), so the
    // keys at the bottom show; the count includes the borders.
    let width = CONFIRM_WIDTH.min(area.width);
    let height = paragraph.line_count(width.saturating_sub(2));
    let popup = centered(area, width, u16::try_from(height).unwrap_or(u16::MAX));
    frame.render_widget(Clear, popup);
    frame.render_widget(paragraph, popup);
}

/// The file's folder and name: enough to know it, short enough for a title.
fn short_path(file: &std::path::Path) -> String {
    let mut parts: Vec<String> = file
        .components()
        .rev()
        .take(2)
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}
