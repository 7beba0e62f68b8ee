//! GGUF container: strict zero-copy reader, writer, metadata values and the ggml type tables.

mod dialect;
mod error;
mod reader;
mod types;
mod value;
mod writer;

pub use dialect::{decide_dialect, span_fits, DialectInput, FORK_ARCHITECTURES};
pub use error::{GgufError, LoadError};
pub use reader::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_METADATA_VALUES, MAX_TENSOR_NAME};
pub use types::{align_up, Dialect, GgmlType, Storage};
pub use value::{Value, ValueType};
pub use writer::{header, write_str, write_value, GgufWriter, Layout, TensorEntry, WriterTensor};
