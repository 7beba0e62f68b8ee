//! `Model::make_resident` moves the matmul weights from the memory map into anonymous huge-page memory: the
//! bytes and every logit must stay identical, in every flavor (mapped x86 I2_S, repacked ARM I2_S, TQ, F16).

use std::path::{Path, PathBuf};

use engine::flavor::I2sLayout;
use engine::kernels::{Dispatcher, KernelChoice};
use engine::model::{Logits, Model, Session};

mod common;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(rel)
}

fn open(rel: &str, layout: Option<I2sLayout>) -> Model {
    let path = fixture(rel);
    common::open_with_layout(&path, layout)
}

fn logits(model: &Model) -> Vec<u32> {
    let disp = Dispatcher::new(KernelChoice::Auto).expect("dispatcher");
    let mut s = Session::new(model, &disp, model.auto_numerics(), 64);
    let tokens: Vec<u32> = (1..=16).collect();
    let mut out = s.decode(&tokens, Logits::All).expect("batch decode");
    out.extend(s.decode(&[17], Logits::All).expect("one-token decode"));
    out.into_iter().map(f32::to_bits).collect()
}

#[test]
fn resident_weights_are_bit_identical_in_every_flavor() {
    for (rel, layout) in [
        ("reference/trained/tiny-trained-b158.i2_s.gguf", None),
        ("generated/tiny-b158.i2s.gguf", None),
        ("generated/tiny-b158.i2s-arm.gguf", Some(I2sLayout::Arm64)),
        ("generated/tiny-bitnet.tq2_0.gguf", None),
        ("generated/tiny-b158.f16.gguf", None),
    ] {
        let mapped = open(rel, layout);
        let mut resident = open(rel, layout);
        assert!(!resident.weights.is_resident(), "{rel}");
        let copied = resident.make_resident().expect("make_resident");
        assert!(copied > 0 && resident.weights.is_resident(), "{rel}: {copied} bytes");
        let (f, g) = (&*mapped.file, &*resident.file);
        assert_eq!(
            mapped.weights.token_embd.data(f),
            resident.weights.token_embd.data(g),
            "{rel}"
        );
        for (a, b) in mapped.weights.layers.iter().zip(&resident.weights.layers) {
            for (wa, wb) in [(&a.wq, &b.wq), (&a.wk, &b.wk), (&a.ffn_down, &b.ffn_down)] {
                assert_eq!(wa.data(f), wb.data(g), "{rel} {}", wa.name);
                assert_eq!(
                    wb.data(g).as_ptr() as usize % 64,
                    0,
                    "{rel} {}: arena placement",
                    wb.name
                );
            }
        }
        assert_eq!(logits(&mapped), logits(&resident), "{rel}");
        assert_eq!(
            resident.make_resident().expect("second call"),
            0,
            "{rel}: nothing left to copy"
        );
    }
}
