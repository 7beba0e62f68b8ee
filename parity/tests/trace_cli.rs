//! `parity trace` on the trained reference model: a switch's first divergence is where the spec says,
//! identical settings report none, and the exit status says which.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

mod common;

const P16: &str = "501,333,82,76,111,356,58,262,374,84,802,793,273,562,422,115";

fn trained() -> Option<PathBuf> {
    common::committed_or_shared("trained/tiny-trained-b158.i2_s.gguf")
}

fn trace(args: &[&str]) -> (i32, String, String) {
    common::parity(&[&["trace"], args].concat())
}

fn trace_json(model: &Path, extra: &[&str]) -> (i32, Json) {
    let mut args = vec![model.to_str().unwrap(), "--tokens", P16, "--json", "--threads", "2"];
    args.extend_from_slice(extra);
    let (code, out, err) = trace(&args);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    (code, serde_json::from_str(&out).unwrap())
}

#[test]
fn h1_first_diverges_at_ffn_act_0_in_both_modes() {
    let Some(m) = trained() else { return };
    for mode in ["batch", "seq"] {
        let (code, j) = trace_json(&m, &["--mode", mode, "--switch", "H1"]);
        assert_eq!(code, 1);
        assert_eq!(j["first_divergence"], "ffn_act-0", "{mode}");
        assert_eq!(j["first_over_threshold"], "ffn_act-0");
        assert_eq!(j["ours_label"], "bitnet.cpp-2025+H1");
        assert_eq!(j["theirs_label"], "bitnet.cpp-2025");
        // The same divergence seen from the other side.
        let (_, k) = trace_json(&m, &["--mode", mode, "--against-switch", "H1"]);
        assert_eq!(k["first_divergence"], "ffn_act-0");
    }
}

#[test]
fn h3_in_batch_mode_first_diverges_at_kq_0() {
    let Some(m) = trained() else { return };
    let (code, j) = trace_json(&m, &["--mode", "batch", "--against-switch", "H3"]);
    assert_eq!(code, 1);
    assert_eq!(j["first_divergence"], "kq-0");
    let (code, j) = trace_json(&m, &["--mode", "seq", "--against-switch", "H3"]);
    assert_eq!(code, 0, "H3 does nothing in seq mode");
    assert_eq!(j["first_divergence"], Json::Null);
}

#[test]
fn identical_settings_report_no_divergence() {
    let Some(m) = trained() else { return };
    let (code, j) = trace_json(&m, &["--mode", "batch", "--against-numerics", "bitnet.cpp-2025"]);
    assert_eq!(code, 0);
    assert_eq!(j["first_divergence"], Json::Null);
    assert_eq!(j["first_over_threshold"], Json::Null);
    let diffs = j["diffs"].as_array().unwrap();
    assert_eq!(diffs.len(), 4 * 20 + 2);
    assert!(diffs
        .iter()
        .all(|d| d["bit_exact"] == true && d["nmse"] == 0.0 && d["max_abs_diff"] == 0.0));
}

#[test]
fn layer_filter_and_human_table() {
    let Some(m) = trained() else { return };
    let (code, j) = trace_json(&m, &["--mode", "batch", "--switch", "H1", "--trace-layers", "1,3"]);
    assert_eq!(code, 1);
    let labels: Vec<&str> = j["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2 * 20 + 2);
    assert!(labels
        .iter()
        .all(|l| l.ends_with("-1") || l.ends_with("-3") || l.starts_with("result_")));
    // Layer 0's FFN already diverged, so layer 1 differs from its first tensor on.
    assert_eq!(j["first_divergence"], "attn_norm-1");
    let (code, out, _) = trace(&[m.to_str().unwrap(), "--tokens", P16, "--switch", "H1"]);
    assert_eq!(code, 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with("ffn_act-0") && l.contains("<- first divergence")),
        "{out}"
    );
    assert!(out.contains("first divergence: ffn_act-0"));
}

#[test]
fn bad_input_exits_2() {
    let Some(m) = trained() else { return };
    let m = m.to_str().unwrap();
    for args in [
        vec![m, "--tokens", "1,2", "--against-numerics", "bitnet.cpp-1999"],
        vec![m, "--tokens", "1,2", "--against-switch", "H9"],
        vec![m, "--tokens", "1,2", "--trace-layers", "4"],
        vec![m, "--tokens", "1,99999"],
        vec!["/nonexistent.gguf", "--tokens", "1"],
    ] {
        let (code, _, err) = trace(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{err}");
    }
}
