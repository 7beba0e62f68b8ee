//! Reference backends for parity checks against bitnet.cpp.
//!
//! * [`Ffi`]: a user-built bitnet.cpp (found through `BITNET_CPP_DIR` at build time, feature `ffi`) running
//!   in a crash-isolated `parity-ref-worker` process that speaks [`protocol`].
//! * [`Recorded`]: goldens in a recorded-reference directory (`manifest.json`, one
//!   [`RecordedReference`] read with the receipts crate's schema check, + `.npy` logits).
//!
//! Both implement [`ReferenceBackend`]. [`npy`] (re-exported from `vocab`) reads and writes the `.npy` arrays.

pub mod backend;
pub mod error;
pub mod ffi;
#[cfg(feature = "ffi")]
pub mod llama;
pub mod protocol;
pub mod recorded;
pub mod stderr;
pub mod trace_store;

pub use vocab::npy;

pub use backend::{argmax, Logits, Mode, RefTensor, ReferenceBackend, ReferenceIdentity, ReferenceKind};
pub use error::RefError;
pub use ffi::{find_worker, Ffi, FfiOptions};
pub use receipts::reference::{RecordedCase, RecordedReference};
pub use recorded::Recorded;
pub use vocab::sha256_hex;

/// Whether this build links a bitnet.cpp (feature `ffi`).
pub const FFI_COMPILED: bool = cfg!(feature = "ffi");
