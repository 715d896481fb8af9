//! What a source of objects (a manifests directory, or the Kubernetes API) publishes to the
//! pipeline: the latest complete snapshot, through a `tokio::sync::watch` channel, so that a
//! burst of changes is seen as one and a slow pipeline never queues stale snapshots.

use std::sync::Arc;

use routes_core::model::Snapshot;

#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// Every object the source currently knows. The Kubernetes source changes it in place
    /// (`Arc::make_mut`) when nobody else holds it, and copies it otherwise: hold a clone only
    /// as long as needed (the pipeline drops it once translated).
    pub snapshot: Arc<Snapshot>,
    /// Objects that could not be read (file, kind, name and why), kept out of the snapshot.
    pub warnings: Vec<String>,
    /// False until every watch has completed its first list (or every file was read once):
    /// nothing may be rendered from a half-synced cache.
    pub synced: bool,
    /// Bumped on every change, for logs and metrics.
    pub revision: u64,
}

pub type SourceSender = tokio::sync::watch::Sender<SourceState>;
pub type SourceReceiver = tokio::sync::watch::Receiver<SourceState>;
