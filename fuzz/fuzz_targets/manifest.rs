//! Fuzz recorded-reference manifest parsing (`manifest.json`, recorded-reference/v1): any bytes give a
//! manifest or a typed error naming the file.
#![no_main]

use std::path::Path;

use ffi_ref::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Manifest::parse(data, Path::new("fuzz/manifest.json"));
});
