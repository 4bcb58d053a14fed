//! The tree pane: problems first, then the rows around the selection.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::Theme;
use crate::app::App;
use crate::tree::Row;

/// At most this many problems are listed above the tree; the rest are counted.
const PROBLEMS_SHOWN: usize = 3;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered()
        .title(" Servers ▸ policies ▸ clients ")
        .border_style(theme.border());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let Some(world) = &app.world else {
        let text = format!("Reading {}…", app.source);
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    };
    let problems = problem_lines(&world.snapshot.problems, theme);
    // Problems wrap; at most half the pane goes to them.
    let width = usize::from(inner.width.max(1));
    let wrapped: usize = problems
        .iter()
        .map(|line| line.width().div_ceil(width).max(1))
        .sum();
    let wrapped = wrapped.min(usize::from(inner.height / 2));
    let [problems_area, rows_area] = Layout::vertical([
        Constraint::Length(u16::try_from(wrapped).unwrap_or(u16::MAX)),
        Constraint::Min(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(problems).wrap(Wrap { trim: false }),
        problems_area,
    );

    if app.rows.is_empty() {
        let text = if world.snapshot.is_empty() {
            format!("No AuthServer, AuthPolicy or AuthClient in {}.", app.source)
        } else if app.filter.is_active() {
            format!(
                "Nothing matches the filter \"{}\" (esc clears it).",
                app.filter.describe()
            )
        } else {
            "No clients in this namespace (:ns all shows every namespace).".to_owned()
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.dim())
                .wrap(Wrap { trim: true }),
            rows_area,
        );
        return;
    }

    let height = usize::from(rows_area.height);
    let offset = scroll_offset(app.offset.get(), app.selected, height, app.rows.len());
    app.offset.set(offset);
    let lines: Vec<Line> = app
        .rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(index, row)| {
            row_line(
                row,
                index == app.selected,
                app.changed.contains_key(&row.id),
                theme,
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), rows_area);
}

/// Keeps the selection on screen, moving the view as little as possible.
fn scroll_offset(offset: usize, selected: usize, height: usize, rows: usize) -> usize {
    if height == 0 {
        return selected;
    }
    let offset = if selected < offset {
        selected
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    };
    offset.min(rows.saturating_sub(height))
}

fn row_line(row: &Row, selected: bool, changed: bool, theme: Theme) -> Line<'static> {
    let arrow = match (row.expandable, row.expanded) {
        (true, true) => "▾ ",
        (true, false) => "▸ ",
        (false, _) => "  ",
    };
    let mut spans = vec![
        Span::raw(format!("{}{arrow}", "  ".repeat(row.depth))),
        Span::styled(row.state.symbol(), theme.state(row.state)),
        Span::raw(" "),
        Span::styled(
            row.label.clone(),
            if changed {
                theme.changed()
            } else {
                ratatui::style::Style::new()
            },
        ),
    ];
    if let Some(counts) = row.counts {
        spans.push(Span::styled(format!("  {counts}"), theme.dim()));
    }
    if changed {
        spans.push(Span::styled(" •", theme.changed()));
    }
    let line = Line::from(spans);
    if selected {
        line.style(theme.selected())
    } else {
        line
    }
}

fn problem_lines(problems: &[String], theme: Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = problems
        .iter()
        .take(PROBLEMS_SHOWN)
        .map(|problem| Line::from(Span::styled(format!("! {problem}"), theme.error())))
        .collect();
    if problems.len() > PROBLEMS_SHOWN {
        lines.push(Line::from(Span::styled(
            format!("! …and {} more", problems.len() - PROBLEMS_SHOWN),
            theme.error(),
        )));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::scroll_offset;

    #[test]
    fn the_view_moves_only_to_keep_the_selection_visible() {
        assert_eq!(scroll_offset(0, 5, 10, 100), 0);
        assert_eq!(scroll_offset(0, 10, 10, 100), 1);
        assert_eq!(scroll_offset(20, 5, 10, 100), 5);
        assert_eq!(scroll_offset(95, 99, 10, 100), 90);
    }
}
