//! Semantically broken models are refused at load with a typed error, as bitnet.cpp's loader refuses
//! them, instead of computing NaN or garbage: tensors the hyper-parameters do not account for,
//! non-finite or zero hyper-parameters, a context too large for the machine.

use std::path::PathBuf;
use std::sync::Arc;

use engine::flavor::FlavorOptions;
use engine::gguf::{GgufFile, GgufWriter, Value};
use engine::kernels::{Dispatcher, KernelChoice};
use engine::model::{HParamsError, Model, ModelError, Session};

fn trained() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference/trained/tiny-trained-b158.i2_s.gguf")
}

/// The trained model with `edit` applied to a writer holding its metadata and tensors.
fn edited(edit: impl FnOnce(&mut GgufWriter)) -> Result<Model, ModelError> {
    let g = GgufFile::open(trained()).unwrap();
    let mut w = GgufWriter::copy_of(&g).unwrap();
    edit(&mut w);
    let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
    Model::from_file(Arc::new(file), &FlavorOptions::default())
}

fn set(w: &mut GgufWriter, key: &str, v: Value) {
    w.metadata.iter_mut().find(|(k, _)| k == key).expect("key present").1 = v;
}

#[test]
fn the_unmodified_model_loads() {
    assert!(edited(|_| {}).is_ok());
}

#[test]
fn a_lowered_block_count_with_the_layers_left_in_is_refused_naming_them() {
    let err = edited(|w| set(w, "bitnet-b1.58.block_count", Value::U32(1))).unwrap_err();
    let ModelError::UnusedTensors { unused, n_layer, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*n_layer, 1);
    assert!(unused.iter().all(|n| !n.starts_with("blk.0.")), "{unused:?}");
    assert!(unused.contains(&"blk.1.attn_q.weight".to_string()), "{unused:?}");
    assert!(err.to_string().contains("wrong number of tensors"), "{err}");
}

#[test]
fn a_stray_tensor_is_refused() {
    let err = edited(|w| {
        w.tensor("blk.0.attn_q_extra.weight", &[4], 0, vec![0; 16]);
    })
    .unwrap_err();
    assert!(
        matches!(&err, ModelError::UnusedTensors { unused, .. } if unused == &["blk.0.attn_q_extra.weight"]),
        "{err:?}"
    );
}

#[test]
fn non_finite_and_zero_hyper_parameters_name_their_key() {
    for (key, v) in [
        ("bitnet-b1.58.attention.layer_norm_rms_epsilon", Value::F32(f32::NAN)),
        ("bitnet-b1.58.attention.layer_norm_rms_epsilon", Value::F32(-1.0)),
        ("bitnet-b1.58.context_length", Value::U32(0)),
    ] {
        let err = edited(|w| set(w, key, v)).unwrap_err();
        assert!(
            matches!(&err, ModelError::HParams(HParamsError::Invalid { key: k, .. }) if k == key),
            "{key}: {err:?}"
        );
    }
}

#[test]
fn a_context_larger_than_memory_is_an_error_not_an_abort() {
    let model = Model::open(trained()).unwrap();
    let disp = Dispatcher::new(KernelChoice::Auto).unwrap();
    let numerics = model.auto_numerics();
    for n_ctx in [100_000_000, usize::MAX / 2] {
        let err = Session::try_new(&model, &disp, numerics.clone(), n_ctx).unwrap_err();
        assert!(
            matches!(err, ModelError::Alloc(_) | ModelError::Invalid(_)),
            "{n_ctx}: {err:?}"
        );
    }
    assert!(Session::try_new(&model, &disp, numerics, 64).is_ok());
}
