//! Tracing the forward pass: collect the named intermediate tensors [`Session`] emits, compare two
//! traces tensor by tensor, and align a live llama.cpp reference's callback names with ours.
//!
//! Names, in the order one layer emits them: [`LAYER_NAMES`], then [`FINAL_NAMES`] after the last
//! layer. A tensor is identified by `(name, layer, occurrence)`: the occurrence counts how many
//! times the same `(name, layer)` was emitted before (one per decode call, so in `seq` mode the
//! n-th token's tensors carry occurrence n).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::kernels::Dispatcher;

use super::bitnet::{Model, Session, TraceSink};
use super::hparams::Arch;
use super::numerics::{Numerics, Switch};
use super::weights::Linear;
use super::ModelError;

/// What each layer emits, in order (spec §6.3).
pub const LAYER_NAMES: [&str; 20] = [
    "attn_norm",
    "Qcur",
    "Kcur",
    "Vcur",
    "Qcur_rope",
    "Kcur_rope",
    "kq",
    "kq_soft_max",
    "kqv_out",
    "attn_sub_norm",
    "attn_out",
    "ffn_inp",
    "ffn_norm",
    "ffn_up",
    "ffn_gate",
    "ffn_act",
    "ffn_out",
    "ffn_sub_norm",
    "ffn_down",
    "l_out",
];

/// What is emitted once after the last layer.
pub const FINAL_NAMES: [&str; 2] = ["result_norm", "result_output"];

/// test-backend-ops' default bound on NMSE (`test_case::max_nmse_err()` returns `1e-7`).
pub const DEFAULT_NMSE_THRESHOLD: f64 = 1e-7;

/// Which layers to keep. Tensors after the last layer (`result_norm`, `result_output`) are always kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LayerFilter {
    #[default]
    All,
    Only(BTreeSet<usize>),
}

impl LayerFilter {
    pub fn wants(&self, layer: Option<usize>) -> bool {
        match (self, layer) {
            (LayerFilter::All, _) | (_, None) => true,
            (LayerFilter::Only(set), Some(l)) => set.contains(&l),
        }
    }
}

/// Identifies a tensor across two traces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TensorKey {
    pub name: String,
    pub layer: Option<usize>,
    pub occurrence: usize,
}

impl TensorKey {
    /// `ffn_act-0` (llama.cpp's callback spelling), `result_output`, and `#n` for occurrence n > 0.
    pub fn label(&self) -> String {
        let mut s = match self.layer {
            Some(l) => format!("{}-{l}", self.name),
            None => self.name.clone(),
        };
        if self.occurrence > 0 {
            s.push_str(&format!("#{}", self.occurrence));
        }
        s
    }
}

/// One recorded tensor: `rows` × `cols` f32 values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedTensor {
    pub key: TensorKey,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

#[derive(Debug, Default)]
struct CollectorState {
    tensors: Vec<TracedTensor>,
    seen: HashMap<(String, Option<usize>), usize>,
}

impl CollectorState {
    fn push(&mut self, name: &str, layer: Option<usize>, rows: usize, cols: usize, data: &[f32]) {
        let n = self.seen.entry((name.to_string(), layer)).or_insert(0);
        let key = TensorKey {
            name: name.to_string(),
            layer,
            occurrence: *n,
        };
        *n += 1;
        self.tensors.push(TracedTensor {
            key,
            rows,
            cols,
            data: data.to_vec(),
        });
    }
}

/// A [`TraceSink`] that keeps every wanted tensor in emission order. Clones share one store, so keep
/// a clone, hand another to [`Session::set_trace`], and read the store afterwards.
#[derive(Clone, Debug, Default)]
pub struct TraceCollector {
    filter: LayerFilter,
    state: Arc<Mutex<CollectorState>>,
}

impl TraceCollector {
    pub fn new(filter: LayerFilter) -> TraceCollector {
        TraceCollector {
            filter,
            state: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CollectorState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything collected so far, leaving the store empty (occurrence counts continue).
    pub fn take(&self) -> Vec<TracedTensor> {
        std::mem::take(&mut self.lock().tensors)
    }

    /// A copy of everything collected so far.
    pub fn tensors(&self) -> Vec<TracedTensor> {
        self.lock().tensors.clone()
    }

    pub fn len(&self) -> usize {
        self.lock().tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record a tensor under an arbitrary name (for traces from elsewhere, see [`LlamaAligner`]).
    pub fn push(&self, name: &str, layer: Option<usize>, rows: usize, cols: usize, data: &[f32]) {
        if self.filter.wants(layer) {
            self.lock().push(name, layer, rows, cols, data);
        }
    }
}

impl TraceSink for TraceCollector {
    fn wants(&self, layer: Option<usize>) -> bool {
        self.filter.wants(layer)
    }

    fn record(&mut self, name: &'static str, layer: Option<usize>, rows: usize, cols: usize, data: &[f32]) {
        self.push(name, layer, rows, cols, data);
    }
}

/// Logits and trace of one prompt.
#[derive(Clone, Debug)]
pub struct Traced {
    pub logits: Vec<f32>,
    pub tensors: Vec<TracedTensor>,
}

/// Evaluate `tokens` in a fresh session (`batch`: one ubatch; otherwise one decode per token),
/// recording the tensors of the layers `filter` wants.
pub fn trace_prompt(
    model: &Model,
    disp: &Dispatcher,
    numerics: Numerics,
    tokens: &[u32],
    batch: bool,
    n_ctx: usize,
    filter: LayerFilter,
) -> Result<Traced, ModelError> {
    let collector = TraceCollector::new(filter);
    let mut session = Session::try_new(model, disp, numerics, n_ctx.max(tokens.len()))?;
    session.set_trace(Some(Box::new(collector.clone())));
    let logits = session.eval_prompt(tokens, batch)?;
    session.set_trace(None);
    Ok(Traced {
        logits,
        tensors: collector.take(),
    })
}

/// How one tensor of two traces compares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorDiff {
    pub key: TensorKey,
    /// `name-layer[#occurrence]`, as in [`TensorKey::label`].
    pub label: String,
    /// `[rows, cols]` on each side; `None` where that side lacks the tensor.
    pub shape_ours: Option<[usize; 2]>,
    pub shape_theirs: Option<[usize; 2]>,
    /// Elements compared: all of them, or where the shapes differ the common leading columns of each
    /// row (equal row counts) or the common flat prefix (otherwise); 0 when a side is missing.
    pub compared: usize,
    /// Compared elements whose bits differ.
    pub differing: usize,
    /// [`nmse`] of ours against theirs (NaN, serialised as null, when undefined).
    pub nmse: f64,
    pub max_abs_diff: f64,
    /// Cosine similarity in f64 (1 when both sides are all zeros).
    pub cosine: f64,
    /// Same shape and every bit equal.
    pub bit_exact: bool,
}

impl TensorDiff {
    /// Whether NMSE exceeds `threshold` (a tensor that is not bit-exact and has an undefined NMSE,
    /// or is missing on one side, counts as exceeding).
    pub fn exceeds(&self, threshold: f64) -> bool {
        use std::cmp::Ordering::{Equal, Less};
        !self.bit_exact && !matches!(self.nmse.partial_cmp(&threshold), Some(Less | Equal))
    }
}

/// Normalised mean squared error exactly as llama.cpp's `tests/test-backend-ops.cpp` defines
/// `nmse(a, b, n)` ("normalized mean squared error = mse(a, b) / mse(a, 0)"): the difference and
/// squares are taken in f32, accumulated in f64, and the ratio is not guarded (0/0 gives NaN).
/// test-backend-ops passes the backend under test as `a` and the CPU reference as `b`; here `a` is ours.
pub fn nmse(a: &[f32], b: &[f32]) -> f64 {
    let (mut mse_a_b, mut mse_a_0) = (0f64, 0f64);
    for (&ai, &bi) in a.iter().zip(b) {
        let d = ai - bi;
        mse_a_b += f64::from(d * d);
        mse_a_0 += f64::from(ai * ai);
    }
    mse_a_b / mse_a_0
}

/// Cosine similarity: the workspace's one definition ([`vocab::cosine`]).
pub use vocab::cosine;

/// Largest |a − b| in f64 (NaN if any difference is NaN).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    let mut m = 0f64;
    for (&x, &y) in a.iter().zip(b) {
        let d = (f64::from(x) - f64::from(y)).abs();
        if d.is_nan() {
            return f64::NAN;
        }
        m = m.max(d);
    }
    m
}

fn common_values(a: &TracedTensor, b: &TracedTensor) -> (Vec<f32>, Vec<f32>) {
    if a.rows == b.rows && a.cols != b.cols {
        let c = a.cols.min(b.cols);
        let pick = |t: &TracedTensor| -> Vec<f32> {
            t.data
                .chunks(t.cols.max(1))
                .flat_map(|r| r[..c.min(r.len())].iter().copied())
                .collect()
        };
        (pick(a), pick(b))
    } else {
        let n = a.data.len().min(b.data.len());
        (a.data[..n].to_vec(), b.data[..n].to_vec())
    }
}

fn diff_one(key: &TensorKey, ours: Option<&TracedTensor>, theirs: Option<&TracedTensor>) -> TensorDiff {
    let shape = |t: &TracedTensor| [t.rows, t.cols];
    let mut d = TensorDiff {
        key: key.clone(),
        label: key.label(),
        shape_ours: ours.map(shape),
        shape_theirs: theirs.map(shape),
        compared: 0,
        differing: 0,
        nmse: f64::NAN,
        max_abs_diff: f64::NAN,
        cosine: f64::NAN,
        bit_exact: false,
    };
    let (Some(a), Some(b)) = (ours, theirs) else { return d };
    let (x, y) = if d.shape_ours == d.shape_theirs && a.data.len() == b.data.len() {
        (a.data.clone(), b.data.clone())
    } else {
        common_values(a, b)
    };
    d.compared = x.len();
    d.differing = x.iter().zip(&y).filter(|(p, q)| p.to_bits() != q.to_bits()).count();
    d.bit_exact = d.differing == 0 && d.shape_ours == d.shape_theirs && a.data.len() == b.data.len();
    d.nmse = if d.bit_exact && x.iter().all(|v| *v == 0.0) {
        0.0
    } else {
        nmse(&x, &y)
    };
    d.max_abs_diff = max_abs_diff(&x, &y);
    d.cosine = cosine(&x, &y);
    d
}

/// Align two traces by `(name, layer, occurrence)` and compare each tensor; in the order of `ours`,
/// then tensors only `theirs` has.
pub fn compare_traces(ours: &[TracedTensor], theirs: &[TracedTensor]) -> Vec<TensorDiff> {
    let by_key: HashMap<&TensorKey, &TracedTensor> = theirs.iter().map(|t| (&t.key, t)).collect();
    let mine: std::collections::HashSet<&TensorKey> = ours.iter().map(|t| &t.key).collect();
    let mut out: Vec<TensorDiff> = ours
        .iter()
        .map(|t| diff_one(&t.key, Some(t), by_key.get(&t.key).copied()))
        .collect();
    out.extend(
        theirs
            .iter()
            .filter(|t| !mine.contains(&t.key))
            .map(|t| diff_one(&t.key, None, Some(t))),
    );
    out
}

/// A comparison with its two landmarks: the first tensor whose bits differ and the first whose NMSE
/// exceeds the threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceComparison {
    pub threshold: f64,
    pub diffs: Vec<TensorDiff>,
    /// Index into `diffs` of the first tensor that is not bit-exact.
    pub first_divergence: Option<usize>,
    /// Index into `diffs` of the first tensor whose NMSE exceeds `threshold`.
    pub first_over_threshold: Option<usize>,
}

impl TraceComparison {
    pub fn new(ours: &[TracedTensor], theirs: &[TracedTensor], threshold: f64) -> TraceComparison {
        let diffs = compare_traces(ours, theirs);
        let first_divergence = diffs.iter().position(|d| !d.bit_exact);
        let first_over_threshold = diffs.iter().position(|d| d.exceeds(threshold));
        TraceComparison {
            threshold,
            diffs,
            first_divergence,
            first_over_threshold,
        }
    }

    pub fn first_divergent(&self) -> Option<&TensorDiff> {
        self.first_divergence.map(|i| &self.diffs[i])
    }

    pub fn first_exceeding(&self) -> Option<&TensorDiff> {
        self.first_over_threshold.map(|i| &self.diffs[i])
    }

    /// Labels of every tensor that is not bit-exact, in order.
    pub fn divergent_labels(&self) -> Vec<&str> {
        self.diffs
            .iter()
            .filter(|d| !d.bit_exact)
            .map(|d| d.label.as_str())
            .collect()
    }
}

/// One of our tensor names as a llama.cpp graph callback sees it (bitnet.cpp's fork, `build_bitnet_158`
/// and `build_bitnet` in `src/llama.cpp`): the callback name is `"{llama}-{layer}"` (bare after the
/// last layer), and within one layer of one graph that name is given to `per_layer` tensors, of which
/// ours is the `nth` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LlamaName {
    pub ours: &'static str,
    pub llama: &'static str,
    pub nth: usize,
    pub per_layer: usize,
    /// The name the same tensor carries before the graph renames it (`ggml_format_name` keeps the
    /// last), e.g. `kqv_merged_cont` for `kqv_out` when `llm_build_kv` gets no `wo`.
    pub first_named: Option<&'static str>,
}

/// Our names ↔ llama.cpp callback names for one model and numerics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LlamaNameMap {
    pub entries: Vec<LlamaName>,
}

impl LlamaNameMap {
    /// The map for `arch`. `silu`: the FFN activation is SiLU (`bitnet` arch, or H1); `extra(w)`: how
    /// many ops (`.scale` multiply, bias add) follow the matmul of weight `w` (`"wq"`, `"ffn_up"`, ...).
    pub fn new(arch: Arch, silu: bool, extra: impl Fn(&str) -> usize) -> LlamaNameMap {
        let one = |ours, llama| LlamaName {
            ours,
            llama,
            nth: 0,
            per_layer: 1,
            first_named: None,
        };
        // The last of `per_layer` tensors of that name in a layer.
        let last_of = |ours, llama, per_layer: usize| LlamaName {
            ours,
            llama,
            nth: per_layer - 1,
            per_layer,
            first_named: None,
        };
        let qkv = |ours, llama, w: &str| last_of(ours, llama, 1 + extra(w));
        let roped = |ours, llama, w: &str| last_of(ours, llama, 2 + extra(w));
        let scaled = |ours, w: &str, plain, with_scale| {
            if extra(w) > 0 {
                one(ours, with_scale)
            } else {
                one(ours, plain)
            }
        };
        let ffn_out = if arch == Arch::Bitnet { "ffn_sub_out" } else { "ffn_out" };
        let entries = vec![
            one("attn_norm", "attn_norm"),
            LlamaName {
                per_layer: 2 + extra("wq"),
                ..qkv("Qcur", "Qcur", "wq")
            },
            LlamaName {
                per_layer: 2 + extra("wk"),
                ..qkv("Kcur", "Kcur", "wk")
            },
            qkv("Vcur", "Vcur", "wv"),
            roped("Qcur_rope", "Qcur", "wq"),
            roped("Kcur_rope", "Kcur", "wk"),
            one("kq", "kq"),
            one("kq_soft_max", "kq_soft_max_ext"),
            LlamaName {
                first_named: Some("kqv_merged_cont"),
                ..one("kqv_out", "kqv_out")
            },
            one("attn_sub_norm", "attn_sub_norm"),
            one("attn_out", "attn_o_out"),
            one("ffn_inp", "ffn_inp"),
            one("ffn_norm", "ffn_norm"),
            scaled("ffn_up", "ffn_up", "ffn_up", "ffn_up_s"),
            scaled("ffn_gate", "ffn_gate", "ffn_gate", "ffn_gate_s"),
            one("ffn_act", if silu { "ffn_silu" } else { "ffn_sqr(relu)" }),
            LlamaName {
                first_named: Some("ffn_gate_par"),
                ..one("ffn_out", ffn_out)
            },
            one("ffn_sub_norm", "ffn_sub_norm"),
            one("ffn_down", "ffn_down"),
            one("l_out", "l_out"),
            one("result_norm", "result_norm"),
            one("result_output", "result_output"),
        ];
        LlamaNameMap { entries }
    }

    /// The map for a loaded model evaluated under `numerics`.
    pub fn for_model(model: &Model, numerics: &Numerics) -> LlamaNameMap {
        let silu = model.hparams.arch != Arch::BitnetB158 || numerics.has(Switch::H1);
        let layer = model.weights.layers.first();
        let count = |l: &Linear| usize::from(l.out_scale.is_some()) + usize::from(l.bias.is_some());
        LlamaNameMap::new(model.hparams.arch, silu, |w| {
            let Some(l) = layer else { return 0 };
            // Both graphs name the q/k/v product once after any `.scale` multiply (build_bitnet names the
            // scaled product, not the bare matmul), so only a bias adds a callback tensor there.
            match w {
                "wq" => usize::from(l.wq.bias.is_some()),
                "wk" => usize::from(l.wk.bias.is_some()),
                "wv" => usize::from(l.wv.bias.is_some()),
                "ffn_up" => count(&l.ffn_up),
                "ffn_gate" => count(&l.ffn_gate),
                _ => 0,
            }
        })
    }

    /// The llama.cpp spelling of one of our names.
    pub fn llama(&self, ours: &str) -> Option<&LlamaName> {
        self.entries.iter().find(|e| e.ours == ours)
    }

    /// Our name for the `count`-th (0-based, counted per layer over the whole run) tensor a callback
    /// named `llama` (without the layer suffix).
    pub fn ours(&self, llama: &str, count: usize) -> Option<&'static str> {
        self.entries
            .iter()
            .find(|e| e.llama == llama && count % e.per_layer == e.nth)
            .map(|e| e.ours)
    }
}

/// Split a callback name `attn_norm-3` into (`attn_norm`, Some(3)); `result_norm` has no layer.
pub fn split_llama_name(name: &str) -> (&str, Option<usize>) {
    match name.rsplit_once('-') {
        Some((base, l)) if !base.is_empty() && !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            (base, l.parse().ok())
        }
        _ => (name, None),
    }
}

/// Turns a stream of llama.cpp graph-callback tensors (e.g. from a live reference's eval callback)
/// into a trace under our names, dropping tensors we have no counterpart for.
#[derive(Debug)]
pub struct LlamaAligner {
    map: LlamaNameMap,
    counts: HashMap<(String, Option<usize>), usize>,
    collector: TraceCollector,
}

impl LlamaAligner {
    pub fn new(map: LlamaNameMap, collector: TraceCollector) -> LlamaAligner {
        LlamaAligner {
            map,
            counts: HashMap::new(),
            collector,
        }
    }

    /// Take one callback tensor; returns our name if it has one (and was recorded).
    pub fn record(&mut self, callback_name: &str, rows: usize, cols: usize, data: &[f32]) -> Option<&'static str> {
        let (base, layer) = split_llama_name(callback_name);
        let n = self.counts.entry((base.to_string(), layer)).or_insert(0);
        let ours = self.map.ours(base, *n);
        *n += 1;
        let ours = ours?;
        self.collector.push(ours, layer, rows, cols, data);
        Some(ours)
    }

    pub fn collector(&self) -> &TraceCollector {
        &self.collector
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, layer: Option<usize>, data: Vec<f32>) -> TracedTensor {
        let key = TensorKey {
            name: name.into(),
            layer,
            occurrence: 0,
        };
        TracedTensor {
            key,
            rows: 1,
            cols: data.len(),
            data,
        }
    }

    #[test]
    fn nmse_matches_the_test_backend_ops_formula() {
        assert_eq!(nmse(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!((nmse(&[3.0, 4.0], &[3.0, 3.0]) - 1.0 / 25.0).abs() < 1e-15);
        assert!(nmse(&[0.0], &[0.0]).is_nan());
        assert!(nmse(&[0.0], &[1.0]).is_infinite());
    }

    #[test]
    fn first_divergence_is_any_bit_and_threshold_is_separate() {
        let ours = vec![
            t("a", Some(0), vec![1.0, 2.0]),
            t("b", Some(0), vec![1.0, 1.0]),
            t("c", Some(0), vec![1.0, 0.0]),
        ];
        let theirs = vec![
            t("a", Some(0), vec![1.0, 2.0]),
            t("b", Some(0), vec![1.0, f32::from_bits(1.0f32.to_bits() + 1)]),
            t("c", Some(0), vec![1.0, 1.0]),
        ];
        let c = TraceComparison::new(&ours, &theirs, DEFAULT_NMSE_THRESHOLD);
        assert_eq!(c.first_divergent().unwrap().label, "b-0");
        assert_eq!(c.first_exceeding().unwrap().label, "c-0");
        assert_eq!(c.diffs[1].differing, 1);
    }

    #[test]
    fn signed_zero_differs_and_missing_tensors_count() {
        let c = TraceComparison::new(
            &[t("a", None, vec![0.0])],
            &[t("a", None, vec![-0.0]), t("z", None, vec![1.0])],
            1e-7,
        );
        assert_eq!(c.divergent_labels(), ["a", "z"]);
        assert_eq!(c.diffs[1].shape_ours, None);
        assert!(c.diffs[1].exceeds(1.0));
    }

    #[test]
    fn differing_widths_compare_the_common_columns() {
        let a = TracedTensor {
            key: TensorKey {
                name: "kq".into(),
                layer: Some(0),
                occurrence: 0,
            },
            rows: 2,
            cols: 2,
            data: vec![1.0, 2.0, 3.0, 4.0],
        };
        let b = TracedTensor {
            cols: 3,
            data: vec![1.0, 2.0, 0.0, 3.0, 4.0, 0.0],
            ..a.clone()
        };
        let d = &compare_traces(&[a], &[b])[0];
        assert_eq!((d.compared, d.differing, d.bit_exact), (4, 0, false));
    }

    #[test]
    fn collector_counts_occurrences_and_filters_layers() {
        let mut c = TraceCollector::new(LayerFilter::Only([1].into()));
        let keep = c.clone();
        for _ in 0..2 {
            for l in 0..2 {
                if c.wants(Some(l)) {
                    c.record("kq", Some(l), 1, 1, &[0.5]);
                }
            }
            c.record("result_output", None, 1, 1, &[1.0]);
        }
        let labels: Vec<String> = keep.take().iter().map(|t| t.key.label()).collect();
        assert_eq!(labels, ["kq-1", "result_output", "kq-1#1", "result_output#1"]);
    }

    #[test]
    fn llama_names_align_by_occurrence() {
        let map = LlamaNameMap::new(Arch::BitnetB158, false, |_| 0);
        assert_eq!(map.ours("Qcur", 0), Some("Qcur"));
        assert_eq!(map.ours("Qcur", 1), Some("Qcur_rope"));
        assert_eq!(map.ours("Qcur", 2), Some("Qcur"));
        assert_eq!(map.ours("ffn_sqr(relu)", 0), Some("ffn_act"));
        assert_eq!(map.ours("norm", 0), None);
        let legacy = LlamaNameMap::new(Arch::Bitnet, true, |w| usize::from(w != "wo"));
        assert_eq!(legacy.ours("Qcur", 0), None);
        assert_eq!(legacy.ours("Qcur", 1), Some("Qcur"));
        assert_eq!(legacy.ours("Qcur", 2), Some("Qcur_rope"));
        assert_eq!(legacy.llama("ffn_up").unwrap().llama, "ffn_up_s");
        assert_eq!(legacy.llama("ffn_out").unwrap().llama, "ffn_sub_out");
        assert_eq!(split_llama_name("ffn_sqr(relu)-12"), ("ffn_sqr(relu)", Some(12)));
        assert_eq!(split_llama_name("result_output"), ("result_output", None));

        let collector = TraceCollector::default();
        let mut al = LlamaAligner::new(map, collector.clone());
        for name in [
            "norm-0",
            "attn_norm-0",
            "Qcur-0",
            "Qcur-0",
            "Qcur-0",
            "Qcur-0",
            "result_output",
        ] {
            al.record(name, 1, 1, &[0.0]);
        }
        let labels: Vec<String> = collector.take().iter().map(|t| t.key.label()).collect();
        assert_eq!(
            labels,
            [
                "attn_norm-0",
                "Qcur-0",
                "Qcur_rope-0",
                "Qcur-0#1",
                "Qcur_rope-0#1",
                "result_output"
            ]
        );
    }
}
