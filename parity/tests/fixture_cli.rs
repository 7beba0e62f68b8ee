//! `parity fixture`: deterministic files, one set of ternary weights across flavors, output the engine's
//! reader accepts and that equals the library generator's bytes, typed errors for bad shapes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use engine::gguf::{GgufFile, Value};
use fixtures::codec::{self, I2sLayout};
use fixtures::{generate, Arch, FixtureSpec, Flavor};

fn parity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parity"))
        .arg("fixture")
        .args(args)
        .output()
        .expect("run parity")
}

fn make(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = extra.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    let o = parity(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn two_runs_are_byte_identical_and_equal_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--arch", "bitnet", "--flavor", "tq1_0", "--seed", "11", "--layers", "1"];
    let a = std::fs::read(make(dir.path(), "a.gguf", &args)).unwrap();
    let b = std::fs::read(make(dir.path(), "b.gguf", &args)).unwrap();
    assert_eq!(a, b);
    let spec = FixtureSpec {
        layers: 1,
        ..FixtureSpec::tiny(Arch::Bitnet, Flavor::Tq1_0, 11)
    };
    assert_eq!(a, generate(&spec).unwrap());
    assert!(!dir.path().join("a.gguf.partial").exists());
}

#[test]
fn flavors_carry_the_same_ternary_weights() {
    let dir = tempfile::tempdir().unwrap();
    let open = |flavor: &str| {
        GgufFile::open(make(
            dir.path(),
            &format!("{flavor}.gguf"),
            &["--flavor", flavor, "--seed", "4"],
        ))
        .unwrap()
    };
    let (x86, arm, tq2, tq1, f16) = (open("i2s"), open("i2s-arm"), open("tq2_0"), open("tq1_0"), open("f16"));
    for t in x86.tensors.iter().filter(|t| t.type_id == 36) {
        let n = t.n_elements as usize;
        let data = |f: &GgufFile| f.tensor_data_by_name(&t.name).unwrap().to_vec();
        let (want, scale) = codec::decode_i2s(&data(&x86), n, I2sLayout::X86Act128).unwrap();
        assert_eq!(
            codec::decode_i2s(&data(&arm), n, I2sLayout::Arm64).unwrap(),
            (want.clone(), scale),
            "{}",
            t.name
        );
        assert_ne!(data(&arm), data(&x86));
        assert_eq!(codec::decode_tq2_0(&data(&tq2), n).unwrap().0, want, "{}", t.name);
        assert_eq!(codec::decode_tq1_0(&data(&tq1), n).unwrap().0, want, "{}", t.name);
        let (tf, mag) = codec::decode_f16_ternary(&data(&f16)).unwrap();
        assert_eq!((tf, mag), (want, codec::f16::from_f32(scale)), "{}", t.name);
    }
}

#[test]
fn output_has_the_requested_shape() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--flavor",
        "i2s",
        "--seed",
        "2",
        "--hidden",
        "512",
        "--ffn",
        "768",
        "--layers",
        "3",
        "--heads",
        "8",
        "--kv-heads",
        "2",
        "--vocab",
        "600",
        "--ctx",
        "256",
    ];
    let f = GgufFile::open(make(dir.path(), "m.gguf", &args)).unwrap();
    let u = |k: &str| f.get(k).and_then(Value::as_u64);
    assert_eq!(f.architecture(), "bitnet-b1.58");
    assert_eq!(u("bitnet-b1.58.block_count"), Some(3));
    assert_eq!(u("bitnet-b1.58.attention.head_count_kv"), Some(2));
    assert_eq!(u("bitnet-b1.58.context_length"), Some(256));
    assert_eq!(
        f.get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .map(<[Value]>::len),
        Some(600)
    );
    assert_eq!(f.tensor("blk.2.attn_v.weight").unwrap().dims, vec![512, 128]);
    assert_eq!(f.tensor("blk.2.ffn_down.weight").unwrap().dims, vec![768, 512]);
    assert_eq!(f.tensors.len(), 2 + 11 * 3);
}

#[test]
fn bad_shapes_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.gguf");
    let o = parity(&["--flavor", "tq2_0", "--ffn", "384", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("multiple of 256") && err.contains("ffn"), "{err}");
    assert!(!out.exists());
    let o = parity(&[
        "--arch",
        "bitnet",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kv_heads == heads"));
}

#[test]
fn foreign_layout_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = make(dir.path(), "f.gguf", &["--foreign", "bitnet32f16", "--layers", "1"]);
    let f = GgufFile::open(p).unwrap();
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.type_id, q.span), (36, (256 * 256 / 32 * 10u64).div_ceil(32) * 32));
}

#[test]
fn help_has_examples() {
    let o = parity(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("Examples:") && help.contains("--shape 2b4t") && help.contains("i2s-arm"),
        "{help}"
    );
}
