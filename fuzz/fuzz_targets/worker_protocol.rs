//! Fuzz the worker protocol decoder on both sides: whatever a crashed, hostile or confused worker (or
//! harness) writes decodes to frames or an I/O error, never a panic or an allocation the bytes do not
//! justify (length prefixes claim up to 8 GiB).
#![no_main]

use ffi_ref::protocol::{bytes_to_f32, read_frame, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    while let Ok(Some(f)) = read_frame::<Response>(&mut r) {
        let _ = bytes_to_f32(&f.payload);
    }
    let mut r = data;
    while let Ok(Some(_)) = read_frame::<Request>(&mut r) {}
});
