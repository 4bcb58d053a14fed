//! Drawing: every widget is a function of [`App`]; nothing here changes state but the
//! tree's scroll offset.

mod detail;
mod editor;
mod overlays;
mod theme;
mod tree;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Mode};
use crate::keys::BINDINGS;
use crate::model::State;
pub use theme::Theme;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let theme = Theme::new(app.color);
    let [main, status, hints] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    if let (Mode::Editor, Some(open)) = (&app.mode, &app.editor) {
        let [editing, _] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
        editor::draw(frame, editing, open, theme);
        frame.render_widget(Paragraph::new(status_line(app, theme)), hints);
        return;
    }
    // Side by side; the tree's rows carry their counts, the detail wraps its sentences.
    let [tree_area, detail_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(main);
    tree::draw(frame, tree_area, app, theme);
    detail::draw(frame, detail_area, app, theme);
    frame.render_widget(Paragraph::new(status_line(app, theme)), status);
    frame.render_widget(Paragraph::new(bottom_line(app, theme)), hints);
    match &app.mode {
        Mode::Help => overlays::help(frame, main, theme),
        Mode::Yaml { scroll } => overlays::yaml(frame, main, app, *scroll, theme),
        _ => {}
    }
}

/// Source, scope, totals and when the data was read.
fn status_line(app: &App, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(" {} ", app.source),
        theme.status_source(),
    )];
    let scope = app.namespace.as_deref().map_or_else(
        || "all namespaces".to_owned(),
        |ns| format!("namespace {ns}"),
    );
    spans.push(Span::raw(format!(" {scope}")));
    if app.filter.is_active() {
        spans.push(Span::styled(
            format!(" · filter: {}", app.filter.describe()),
            theme.emphasis(),
        ));
    }
    if let Some(world) = &app.world {
        let inventory = world.inventory();
        let mut counts = crate::model::Counts::default();
        for (index, evaluation) in world.evaluations.iter().enumerate() {
            if app
                .namespace
                .as_deref()
                .is_none_or(|ns| evaluation.client.namespace == ns)
            {
                counts.add(world.client_state(index));
            }
        }
        spans.push(Span::raw(format!(" · {} clients", counts.total())));
        for state in State::ALL {
            let count = counts.get(state);
            if count > 0 {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(
                    format!("{count} {}", state.symbol()),
                    theme.state(state),
                ));
            }
        }
        spans.push(Span::raw(format!(
            " · {} servers · {} policies",
            inventory.servers.len(),
            inventory.policies.len()
        )));
        spans.push(Span::raw(format!(
            " · read {}",
            world.snapshot.read_at.format("%H:%M:%S")
        )));
    } else {
        spans.push(Span::raw(" · reading…"));
    }
    Line::from(spans)
}

/// The input line while typing, else the last message, else the key hints.
fn bottom_line(app: &App, theme: Theme) -> Line<'static> {
    match &app.mode {
        Mode::Filter { input, .. } => {
            return Line::from(vec![
                Span::styled("/", theme.emphasis()),
                Span::raw(input.clone()),
                Span::styled("▏", theme.emphasis()),
                Span::styled(
                    "   enter keep · esc cancel · ns:NAME key=value state:non-compliant",
                    theme.dim(),
                ),
            ]);
        }
        Mode::Command { input } => {
            return Line::from(vec![
                Span::styled(":", theme.emphasis()),
                Span::raw(input.clone()),
                Span::styled("▏", theme.emphasis()),
                Span::styled("   ns NAME · ns all · ctx NAME · q", theme.dim()),
            ]);
        }
        _ => {}
    }
    if let Some(message) = &app.message {
        let style = if message.error {
            theme.error()
        } else {
            theme.emphasis()
        };
        return Line::from(Span::styled(format!(" {}", message.text), style));
    }
    let mut spans = Vec::new();
    for binding in BINDINGS {
        if let Some((key, words)) = binding.hint.and_then(|hint| hint.split_once(' ')) {
            spans.push(Span::styled(format!(" {key}"), theme.key()));
            spans.push(Span::styled(format!(" {words} "), theme.dim()));
        }
    }
    Line::from(spans)
}

/// A rectangle of `width` × `height` centred in `area`, no larger than it.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
