//! Epoch checkpoints, Chandy–Lamport style, and recovery.
//!
//! With [`QueryBuilder::checkpoint`](crate::QueryBuilder::checkpoint) set, a coordinator
//! thread starts a new epoch every interval: it bumps the epoch clock and wakes the
//! sources. Each source records its offset and emits the epoch marker in-band, after
//! everything it emitted before. Each operator, once the marker has arrived on all of its
//! inputs, snapshots its state (serde + bincode, on its own thread: encoding only), hands
//! the bytes to the coordinator over a channel and forwards the marker; each sink flushes
//! and acknowledges. The coordinator writes every snapshot to a memory-mapped log
//! ([`log`]) and, once every participant acknowledged the epoch, a completion entry. No
//! operator thread touches a file.
//!
//! After a crash, the next `start()` with the same directory restores every operator's
//! state and every source's offset from the newest intact complete epoch and continues
//! with the next epoch: records after that epoch are replayed (at-least-once).
//!
//! | module | job |
//! |---|---|
//! | [`config`] | [`CheckpointConfig`], [`CheckpointMode`] |
//! | [`coordinator`] | the coordinator thread, [`AckTracker`](coordinator::AckTracker) (pure completion rule), participants' handles, retention |
//! | `commit` | the commit vocabulary shared with sinks ([`EpochCommit`](crate::sink::EpochCommit)); sinks depend on it, it knows nothing of sinks |
//! | [`entries`] | log entry payloads |
//! | [`recovery`] | choosing and loading the epoch to restore |
//! | [`log`], [`codec`] | the mmap log and the serde codec |

pub mod clock;
pub mod codec;
pub(crate) mod commit;
pub mod config;
pub mod coordinator;
pub mod entries;
pub mod error;
#[allow(unsafe_code)]
pub mod log;
pub mod recovery;

pub use config::{CheckpointConfig, CheckpointMode};
pub use coordinator::{CheckpointStats, EpochReport};
pub use error::CheckpointError;
pub use log::Durability;
