//! Reference backends.
