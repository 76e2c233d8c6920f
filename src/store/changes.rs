//! The hook through which database writers tell an observer (the replicator) that a
//! database file may change, without knowing who listens or which driver writes the file.

use std::fmt::Debug;
use std::path::Path;

use futures::future::BoxFuture;

/// Told about the database files of the per-account stores.
pub trait DbChangeHook: Send + Sync + Debug {
    /// The database file at `path` was opened and may be written from now on.
    fn opened(&self, path: &Path);

    /// A repository write to `path` committed. The future resolves once the write is as
    /// durable as the observer promises (at once, unless the replica is strict).
    fn committed(&self, path: &Path) -> BoxFuture<'static, ()>;
}
