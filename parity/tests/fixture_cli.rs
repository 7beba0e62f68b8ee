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
        let (want, scale) = codec::decode_i2s(&data(&x86), n, I2sLayout::X86).unwrap();
        assert_eq!(
            codec::decode_i2s(&data(&arm), n, I2sLayout::Arm).unwrap(),
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

/// `--arch llama` in every flavor: no sub-norms, an untied `output.weight` that is Q8_0 exactly when
/// hidden % 256 ≠ 0 (llama-quantize's rule), `attention.key_length` from `--head-dim`, and a file the engine
/// runs (logits finite) under the profile `auto` picks for the flavor.
#[test]
fn llama_arch_in_every_flavor_with_the_quantizers_head_type() {
    let dir = tempfile::tempdir().unwrap();
    for flavor in ["i2s", "i2s-arm", "tq2_0", "tq1_0", "f16"] {
        // TQ needs rows that are multiples of 256, so only the I2_S / F16 flavors can take hidden 384.
        let odd = !flavor.starts_with("tq");
        let mut args = vec!["--arch", "llama", "--flavor", flavor, "--seed", "5", "--layers", "1"];
        if odd {
            args.extend([
                "--hidden",
                "384",
                "--heads",
                "3",
                "--kv-heads",
                "1",
                "--head-dim",
                "256",
            ]);
        }
        let path = make(dir.path(), &format!("llama-{flavor}.gguf"), &args);
        let g = GgufFile::open(&path).unwrap();
        assert_eq!(g.get_str("general.architecture"), Some("llama"));
        assert!(g.tensor("blk.0.attn_sub_norm.weight").is_none() && g.tensor("blk.0.ffn_sub_norm.weight").is_none());
        let out = g.tensor("output.weight").expect("untied output.weight");
        assert_eq!(out.type_id, if odd { 8 } else { 1 }, "{flavor}");
        assert_eq!(g.tensor("token_embd.weight").unwrap().type_id, 1, "{flavor}");
        let key_length = g.get("llama.attention.key_length").and_then(Value::as_u64);
        assert_eq!(key_length, odd.then_some(256), "{flavor}");
        let npy = dir.path().join(format!("llama-{flavor}.npy"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parity"));
        cmd.args(["logits", path.to_str().unwrap(), "--tokens", "1,2,3", "--mode", "batch"]);
        if flavor == "i2s-arm" {
            cmd.args(["--i2s-layout", "arm"]);
        }
        let o = cmd.args(["--out", npy.to_str().unwrap()]).output().unwrap();
        assert!(o.status.success(), "{flavor}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// The Falcon3-1B and Llama3-8B presets write those models' hyper-parameters (checked on the header alone;
/// the presets are validated shapes, the files themselves are GBs).
#[test]
fn family_shape_presets() {
    let f3 = FixtureSpec::shape_falcon3_1b();
    assert_eq!(
        (
            f3.arch,
            f3.hidden,
            f3.ffn,
            f3.layers,
            f3.heads,
            f3.kv_heads,
            f3.head_dim(),
            f3.vocab
        ),
        (Arch::Llama, 2048, 8192, 18, 8, 4, 256, 131_072)
    );
    assert_eq!(f3.rope_theta, 1_000_042.0);
    let l3 = FixtureSpec::shape_llama3_8b();
    assert_eq!(
        (
            l3.arch,
            l3.hidden,
            l3.ffn,
            l3.layers,
            l3.heads,
            l3.kv_heads,
            l3.head_dim(),
            l3.vocab
        ),
        (Arch::Llama, 4096, 14336, 32, 32, 8, 128, 128_256)
    );
    let meta = fixtures::model::metadata(&f3).unwrap();
    assert!(meta
        .iter()
        .any(|(k, v)| k == "llama.attention.key_length" && v.as_u64() == Some(256)));
}
