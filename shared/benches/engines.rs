//! The engines at the scale of a large organisation: 10,000 clients.
//!
//! Run with `cargo bench -p nauthera-shared`; figures are recorded in the README.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nauthera_shared::fixtures::{SYNTHETIC_WEB_POLICY, organisation};
use nauthera_shared::impact::Planner;
use nauthera_shared::resources::ObjectRef;

const CLIENTS: usize = 10_000;

fn evaluate(c: &mut Criterion) {
    let world = organisation(CLIENTS);
    c.bench_function("evaluate 10,000 clients", |b| {
        b.iter(|| black_box(world.evaluate_all()));
    });
}

fn impact(c: &mut Criterion) {
    let world = organisation(CLIENTS);
    let planner = Planner::new(world.clone());
    let policy = ObjectRef::new("security", "web-apps-policy");
    let edited = SYNTHETIC_WEB_POLICY.replace("accessTokenTTL: 15m", "accessTokenTTL: 5m");
    let plan = planner
        .plan_text(Some(&policy), &edited)
        .expect("valid edit");
    assert!(
        plan.summary.changes > CLIENTS / 3,
        "the edit must reach most clients: {}",
        plan.summary
    );

    // What each keystroke in the editor costs: parse the text, re-plan against the snapshot.
    c.bench_function("impact of a one-field policy edit, 10,000 clients", |b| {
        b.iter(|| black_box(planner.plan_text(Some(&policy), black_box(&edited))));
    });
    // What opening the editor costs once: evaluate the snapshot to plan against.
    c.bench_function("planner set-up, 10,000 clients", |b| {
        b.iter(|| black_box(Planner::new(world.clone())));
    });
}

criterion_group!(benches, evaluate, impact);
criterion_main!(benches);
