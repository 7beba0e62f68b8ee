//! Fuzz the GGUF reader and flavor classification: any input must give `Ok` or a typed error, never a
//! panic, an out-of-bounds read or an allocation the input size does not justify.
#![no_main]

use engine::flavor::{classify, i2s_code, Flavor, FlavorOptions, I2sLayout, ModelFlavors};
use engine::gguf::GgufFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for t in &file.tensors {
        let _ = file.tensor_data(t);
        for layout in I2sLayout::ALL {
            let opts = FlavorOptions {
                i2s_layout: Some(layout),
                ..Default::default()
            };
            if let Ok(Flavor::I2s { .. }) = classify(&file, t, &opts) {
                // A classified I2_S tensor must decode at its last weight without reading out of bounds.
                let bytes = file
                    .tensor_data(t)
                    .expect("classified tensors have their bytes");
                let (k, rows) = (t.row_len() as usize, t.n_rows() as usize);
                let _ = i2s_code(bytes, layout, k, rows - 1, k - 1);
            }
        }
    }
    let _ = ModelFlavors::classify(&file, &FlavorOptions::default());
});
