//! GGUF container: strict zero-copy reader, writer, metadata values and the ggml type tables.

mod error;
mod reader;
mod types;
mod value;
mod writer;

pub use error::{GgufError, LoadError};
pub use reader::{decide_dialect, GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH};
pub use types::{align_up, Dialect, GgmlType, Storage};
pub use value::{Value, ValueType};
pub use writer::{GgufWriter, WriterTensor};
