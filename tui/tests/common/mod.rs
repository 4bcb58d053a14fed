//! What the TUI tests share: the examples as a snapshot, an app on them, keys, and a
//! screen drawn into ratatui's `TestBackend`.

#![allow(dead_code)]

pub mod cluster;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Local, TimeZone};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nauthera_tui::app::{App, Effect};
use nauthera_tui::model::{Snapshot, SourceKind};
use nauthera_tui::source::folder;
use nauthera_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A read of `dir` with a fixed time, so screens do not depend on the clock.
pub fn read(dir: &Path) -> Snapshot {
    let mut snapshot = folder::read(dir);
    snapshot.read_at = Local.with_ymd_and_hms(2026, 11, 22, 9, 30, 0).unwrap();
    snapshot
}

/// An app on `examples/`, as `nauthera-tui --manifests examples` starts.
pub fn app_on_examples() -> App {
    let mut app = App::new(SourceKind::Folder(PathBuf::from("examples")), None);
    app.color = false;
    app.apply_snapshot(read(&examples()), Instant::now());
    app
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Types `text` as keys, one character at a time.
pub fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .map(|c| app.handle_key(key(KeyCode::Char(c))))
        .collect()
}

/// Moves the selection to the first row whose label is `label`.
pub fn select(app: &mut App, label: &str) {
    app.handle_key(key(KeyCode::Home));
    for _ in 0..app.rows.len() {
        if app.selected_row().is_some_and(|row| row.label == label) {
            return;
        }
        app.handle_key(key(KeyCode::Down));
    }
    panic!(
        "no row {label}; rows: {:?}",
        app.rows.iter().map(|r| &r.label).collect::<Vec<_>>()
    );
}

/// The screen as text, one line per terminal row.
pub fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Copies a folder tree, so a test may write to its copy.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
