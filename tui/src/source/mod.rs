//! Where snapshots come from: a folder followed on disk, or a cluster followed by watches.
//! Each source runs beside the UI and sends what it reads over a channel; the UI never
//! waits on it.

pub mod cluster;
pub mod folder;

use crate::model::Snapshot;

pub enum SourceEvent {
    /// A whole new read of the source.
    Snapshot(Snapshot),
    /// The cluster source connected: which context it reads, and that context's namespace.
    Connected {
        context: String,
        default_namespace: String,
    },
}
