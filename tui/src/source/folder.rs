//! A folder of manifests as a source: read it whole, then again whenever a YAML file in
//! it changes on disk.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use nauthera_shared::manifests::load_dir;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::SourceEvent;
use crate::model::Snapshot;

/// Edits often come as bursts of file events (write, rename, chmod): wait this long for
/// quiet before reading again.
const SETTLE: Duration = Duration::from_millis(150);

/// Reads the folder; what cannot be read becomes a problem on screen, never an error.
pub fn read(path: &Path) -> Snapshot {
    match load_dir(path) {
        Ok(loaded) => {
            let mut snapshot = Snapshot::new(loaded.inventory, false);
            snapshot.origins = loaded.origins;
            snapshot.problems = loaded.errors.iter().map(ToString::to_string).collect();
            if snapshot.is_empty() && loaded.errors.is_empty() {
                snapshot.problems.push(format!(
                    "no Nauthera manifests in {} ({} YAML files read, {} other documents skipped)",
                    path.display(),
                    loaded.files,
                    loaded.skipped
                ));
            }
            snapshot
        }
        Err(error) => {
            let mut snapshot = Snapshot::new(nauthera_shared::Inventory::default(), false);
            snapshot.problems.push(error.to_string());
            snapshot
        }
    }
}

/// Sends a fresh snapshot after every change under `path`, for as long as the returned
/// watcher lives.
pub fn watch(
    path: PathBuf,
    snapshots: UnboundedSender<SourceEvent>,
) -> notify::Result<RecommendedWatcher> {
    let (events, changes) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            // Reading the files ourselves raises access events: only writes count.
            let written =
                event.kind.is_create() || event.kind.is_modify() || event.kind.is_remove();
            let manifest = event.paths.iter().any(|p| is_manifest(p)) || event.kind.is_remove();
            if written && manifest {
                let _ = events.send(());
            }
        }
    })?;
    watcher.watch(&path, RecursiveMode::Recursive)?;
    std::thread::Builder::new()
        .name("folder-watch".to_owned())
        .spawn(move || {
            while changes.recv().is_ok() {
                // Let the burst finish, then read once.
                while changes.recv_timeout(SETTLE).is_ok() {}
                if snapshots.send(SourceEvent::read(read(&path))).is_err() {
                    return;
                }
            }
        })
        .map_err(|error| notify::Error::generic(&error.to_string()))?;
    Ok(watcher)
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"))
}
