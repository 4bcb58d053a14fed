//! The dashboard at the scale of a large organisation: 10,000 clients.
//!
//! Run with `cargo bench -p nauthera-tui`; figures are recorded in the README.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nauthera_shared::fixtures::organisation;
use nauthera_tui::app::App;
use nauthera_tui::model::{Snapshot, SourceKind, World};
use nauthera_tui::{ui, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const CLIENTS: usize = 10_000;

fn app() -> App {
    App::new(SourceKind::Folder(PathBuf::from("bench")), None)
}

fn dashboard(c: &mut Criterion) {
    let snapshot = Snapshot::new(organisation(CLIENTS), false);

    // On the source's thread: evaluate every client of a new read.
    c.bench_function("evaluate a read of 10,000 clients (source thread)", |b| {
        b.iter_batched(|| snapshot.clone(), World::new, BatchSize::LargeInput);
    });
    // On the view worker's thread: build and flatten the tree, compare with the last read.
    let world = World::new(snapshot.clone());
    let taking = std::cell::RefCell::new(app());
    taking
        .borrow_mut()
        .apply_world(world.clone(), Instant::now());
    c.bench_function("prepare a read of 10,000 clients (view thread)", |b| {
        b.iter_batched(
            || taking.borrow().view_request(world.clone()),
            view::prepare,
            BatchSize::LargeInput,
        );
    });
    // On the UI's thread: swap the prepared read in, keep the selection, mark changes. What
    // it lets go of is freed on the view thread (here: after the measurement).
    c.bench_function(
        "take in a prepared read of 10,000 clients (UI thread)",
        |b| {
            b.iter_batched(
                || view::prepare(taking.borrow().view_request(world.clone())),
                |prepared| taking.borrow_mut().take_view(prepared, Instant::now()),
                BatchSize::LargeInput,
            );
        },
    );

    let mut app = app();
    app.apply_snapshot(snapshot.clone(), Instant::now());
    assert!(app.rows.len() > CLIENTS, "every client has a row");
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();

    c.bench_function("render a frame, 10,000 clients", |b| {
        b.iter(|| {
            terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
        });
    });

    let down = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
    c.bench_function("move down and render, 10,000 clients", |b| {
        b.iter(|| {
            app.handle_key(down);
            terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
        });
    });

    let slash = KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE);
    let n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE);
    let backspace = KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE);
    app.handle_key(slash);
    c.bench_function("a filter letter typed and erased, 10,000 clients", |b| {
        b.iter(|| {
            app.handle_key(n);
            app.handle_key(backspace);
        });
    });
}

criterion_group!(benches, dashboard);
criterion_main!(benches);
