//! Popups over the tree: the help overlay and the YAML of the selected object.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{Theme, centered};
use crate::app::App;
use crate::keys::BINDINGS;
use crate::model::State;

pub fn help(frame: &mut Frame, area: Rect, theme: Theme) {
    let mut lines = Vec::new();
    for binding in BINDINGS.iter().filter(|b| !b.keys.is_empty()) {
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<11}", binding.keys), theme.key()),
            Span::raw(binding.help),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(" States", theme.heading())));
    for state in State::ALL {
        lines.push(Line::from(vec![
            Span::styled(format!(" {}  ", state.symbol()), theme.state(state)),
            Span::raw(state.name()),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(" •  ", theme.changed()),
        Span::raw("changed a moment ago"),
    ]));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, 72, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" Keys (esc closes) ")
                .border_style(theme.emphasis()),
        ),
        popup,
    );
}

pub fn yaml(frame: &mut Frame, area: Rect, app: &App, scroll: u16, theme: Theme) {
    let (Some(world), Some(row)) = (&app.world, app.selected_row()) else {
        return;
    };
    let text = world.yaml_of(row.target).unwrap_or_default();
    let lines: Vec<Line> = text
        .lines()
        .map(|line| Line::from(Span::styled(line.to_owned(), Style::new())))
        .collect();
    let popup = centered(area, area.width.saturating_sub(4), area.height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(
            Block::bordered()
                .title(format!(" {} — YAML (j/k scroll, esc closes) ", row.label))
                .border_style(theme.emphasis()),
        ),
        popup,
    );
}
