//! Where snapshots come from: a folder followed on disk, or a cluster followed by watches.
//! Each source runs beside the UI and sends what it reads over a channel; the UI never
//! waits on it.

pub mod cluster;
pub mod events;
pub mod folder;

use crate::model::World;

pub enum SourceEvent {
    /// A whole new read of the source, evaluated by the source's own thread so the UI
    /// never waits for the engine.
    Read(Box<World>),
    /// The cluster source connected: which context it reads, and that context's namespace.
    Connected {
        context: String,
        default_namespace: String,
    },
}

impl SourceEvent {
    pub fn read(snapshot: crate::model::Snapshot) -> Self {
        Self::Read(Box::new(World::new(snapshot)))
    }
}
