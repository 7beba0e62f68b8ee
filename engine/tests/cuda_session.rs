//! The one forward pass on its CUDA backend (`Session::try_new_on`) against the same pass on the CPU exact
//! path (`Session::try_new`, scalar kernels) on the generated tiny models: every position's logits must reach
//! cosine ≥ 0.9999 with the same top-1 (the parity target), one token at a time and as one ubatch;
//! the device kernels' IDs reach the dispatcher's log. Also the typed refusals. Prints `SKIP: …` and returns
//! without a CUDA driver (or in a build without the `cuda` feature).

use std::path::PathBuf;

use engine::kernels::cuda::CudaError;
use engine::kernels::{Dispatcher, Family, Isa, KernelChoice};
use engine::model::trace::cosine;
use engine::model::{ops, Logits, Model, ModelError, Numerics, Profile, Session, TraceSink};

mod common;
use common::cuda_backend as backend;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/generated")
        .join(name)
}

fn scalar() -> Dispatcher {
    Dispatcher::new(KernelChoice::Force(Family::Scalar)).expect("scalar")
}

/// Logits of `tokens` (one ubatch, or one token per decode) from `s`.
fn logits(s: &mut Session, tokens: &[u32], batch: bool) -> Vec<f32> {
    s.eval_prompt(tokens, batch).unwrap_or_else(|e| panic!("decode: {e}"))
}

#[test]
fn gpu_decode_matches_the_cpu_exact_path() {
    let Some(be) = backend() else { return };
    let (cpu_disp, gpu_disp) = (scalar(), scalar());
    let tokens: Vec<u32> = (1..=32).collect();
    for name in [
        "tiny-b158.i2s.gguf",
        "tiny-bitnet.i2s.gguf",
        "tiny-b158.i2s-arm.gguf",
        "tiny-b158.f16.gguf",
        "tiny-bitnet.f16.gguf",
    ] {
        let model = Model::open(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let numerics = model.auto_numerics();
        for batch in [false, true] {
            let mut cpu = Session::try_new(&model, &cpu_disp, numerics.clone(), 64).expect("cpu session");
            let mut gpu = Session::try_new_on(Some(&be), &model, &gpu_disp, numerics.clone(), 64).expect("upload");
            let (want, got) = (logits(&mut cpu, &tokens, batch), logits(&mut gpu, &tokens, batch));
            let nv = model.hparams.n_vocab;
            let mut worst = 1.0f64;
            let mut identical = 0;
            for (p, (w, g)) in want.chunks_exact(nv).zip(got.chunks_exact(nv)).enumerate() {
                let c = cosine(w, g);
                worst = worst.min(c);
                identical += usize::from(w.iter().zip(g).all(|(a, b)| a.to_bits() == b.to_bits()));
                assert!(c >= 0.9999, "{name} batch={batch} pos {p}: cosine {c}");
                assert_eq!(ops::argmax(w), ops::argmax(g), "{name} batch={batch} pos {p}: top-1");
            }
            println!(
                "{name} batch={batch}: min cosine {worst:.9}, bit-identical positions {identical}/{}",
                tokens.len()
            );
        }
    }
    let log = gpu_disp.kernels();
    println!("kernels: {:?}", log.keys().map(ToString::to_string).collect::<Vec<_>>());
    assert!(!log.is_empty() && log.keys().all(|k| k.isa == Isa::Cuda), "{log:?}");
}

#[test]
fn a_cleared_gpu_session_repeats_itself() {
    let Some(be) = backend() else { return };
    let disp = scalar();
    let model = Model::open(fixture("tiny-b158.i2s.gguf")).expect("open");
    let mut gpu = Session::try_new_on(Some(&be), &model, &disp, model.auto_numerics(), 32).expect("upload");
    let first = gpu.decode(&[1, 2, 3], Logits::Last).expect("decode");
    gpu.clear().expect("clear");
    let again = gpu.decode(&[1, 2, 3], Logits::Last).expect("decode");
    assert_eq!(first, again);
}

/// A sink that wants every tensor (the attention scores cannot leave the device).
struct Everything;

impl TraceSink for Everything {
    fn wants(&self, _layer: Option<usize>) -> bool {
        true
    }
    fn record(&mut self, _: &'static str, _: Option<usize>, _: usize, _: usize, _: &[f32]) {}
}

#[test]
fn session_errors_are_typed() {
    let Some(be) = backend() else { return };
    let disp = scalar();
    let model = Model::open(fixture("tiny-b158.i2s.gguf")).expect("open");
    let mut gpu = Session::try_new_on(Some(&be), &model, &disp, model.auto_numerics(), 32).expect("upload");
    let nv = model.hparams.n_vocab as u32;
    assert!(matches!(
        gpu.decode(&[nv], Logits::Last),
        Err(ModelError::TokenOutOfRange { .. })
    ));
    let full: Vec<u32> = vec![1; gpu.n_ctx() + 1];
    assert!(matches!(
        gpu.decode(&full, Logits::Last),
        Err(ModelError::ContextFull { .. })
    ));
    gpu.set_trace(Some(Box::new(Everything)));
    let refused = gpu.decode(&[1], Logits::Last);
    assert!(
        matches!(&refused, Err(ModelError::Cuda(CudaError::Unsupported(w))) if w.contains("kq")),
        "{refused:?}"
    );
    let unsupported = |m: &Model, numerics: Numerics, what: &str| {
        let r = Session::try_new_on(Some(&be), m, &disp, numerics, 32);
        assert!(
            matches!(&r, Err(ModelError::Cuda(CudaError::Unsupported(w))) if w.contains(what)),
            "{what}: {r:?}"
        );
    };
    let tq = Model::open(fixture("tiny-b158.tq2_0.gguf")).expect("open tq2_0");
    unsupported(&tq, tq.auto_numerics(), "tq2_0");
    let arm = Numerics::profile(Profile::BitnetCpp2025Arm, "test");
    unsupported(&model, arm, "x86 float order");
}
