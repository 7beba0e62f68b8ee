//! Writer → reader round trips: every metadata value type (nested arrays included), GGUF v2 and v3,
//! alignments other than 32, tensor placement and spans, and the dialect decision of spec §2.

use engine::gguf::{align_up, Dialect, GgmlType, GgufError, GgufFile, GgufWriter, Value, ValueType};

/// One value of every scalar type, with bit patterns that catch byte-order and width mistakes.
fn scalars() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(0xfe)),
        ("t.i8", Value::I8(-7)),
        ("t.u16", Value::U16(0xbeef)),
        ("t.i16", Value::I16(-12345)),
        ("t.u32", Value::U32(0xdead_beef)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(-1.5e-7)),
        ("t.bool.true", Value::Bool(true)),
        ("t.bool.false", Value::Bool(false)),
        ("t.string", Value::String("héllo · 世界 🦀".into())),
        ("t.string.empty", Value::String(String::new())),
        ("t.u64", Value::U64(0x0123_4567_89ab_cdef)),
        ("t.i64", Value::I64(i64::MIN + 3)),
        ("t.f64", Value::F64(std::f64::consts::PI)),
    ]
}

fn arrays() -> Vec<(&'static str, Value)> {
    let arr = |t, v: Vec<Value>| Value::Array(t, v);
    let mut out: Vec<(&'static str, Value)> = vec![
        ("a.u8", arr(ValueType::U8, vec![Value::U8(0), Value::U8(255)])),
        ("a.i8", arr(ValueType::I8, vec![Value::I8(-128), Value::I8(127)])),
        ("a.u16", arr(ValueType::U16, vec![Value::U16(1), Value::U16(65535)])),
        ("a.i16", arr(ValueType::I16, vec![Value::I16(-1)])),
        ("a.u32", arr(ValueType::U32, vec![Value::U32(7); 5])),
        ("a.i32", arr(ValueType::I32, vec![Value::I32(-3), Value::I32(3)])),
        ("a.f32", arr(ValueType::F32, vec![Value::F32(0.25), Value::F32(-0.0)])),
        (
            "a.bool",
            arr(ValueType::Bool, vec![Value::Bool(true), Value::Bool(false)]),
        ),
        (
            "a.string",
            arr(
                ValueType::String,
                vec![Value::String("a b".into()), Value::String(String::new())],
            ),
        ),
        ("a.u64", arr(ValueType::U64, vec![Value::U64(u64::MAX)])),
        ("a.i64", arr(ValueType::I64, vec![Value::I64(-1), Value::I64(i64::MAX)])),
        ("a.f64", arr(ValueType::F64, vec![Value::F64(1e300)])),
        ("a.empty", arr(ValueType::U32, vec![])),
        (
            "a.nested",
            arr(
                ValueType::Array,
                vec![
                    arr(ValueType::U32, vec![Value::U32(1), Value::U32(2)]),
                    arr(ValueType::String, vec![Value::String("x".into())]),
                    arr(ValueType::Array, vec![arr(ValueType::F32, vec![Value::F32(9.0)])]),
                ],
            ),
        ),
    ];
    // The deepest nesting the reader accepts: MAX_ARRAY_DEPTH (8) array levels.
    let mut deep = arr(ValueType::U8, vec![Value::U8(42)]);
    for _ in 1..engine::gguf::MAX_ARRAY_DEPTH {
        deep = arr(ValueType::Array, vec![deep]);
    }
    out.push(("a.deep8", deep));
    out
}

fn writer_with_all_values(version: u32, alignment: Option<u32>) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.version = version;
    w.kv("general.architecture", Value::String("llama".into()));
    if let Some(a) = alignment {
        w.kv("general.alignment", Value::U32(a));
    }
    for (k, v) in scalars().into_iter().chain(arrays()) {
        w.kv(k, v);
    }
    // Sizes chosen so no tensor ends on an alignment boundary (padding must be inserted).
    w.tensor("f32", &[3], 0, (0..12).collect());
    w.tensor("f16", &[5, 2], 1, (100..120).collect());
    w.tensor("q8_0", &[32, 1], 8, vec![0x11; 34]);
    w.tensor("tq2_0", &[256], 35, vec![0x22; 66]);
    w.tensor("bf16", &[1, 1, 1, 7], 30, vec![0x33; 14]);
    w
}

#[test]
fn every_value_type_round_trips_in_v2_and_v3_at_several_alignments() {
    for version in [2, 3] {
        for alignment in [None, Some(1), Some(8), Some(64), Some(4096)] {
            let w = writer_with_all_values(version, alignment);
            let (bytes, layout) = w.to_bytes_with_layout();
            let g = GgufFile::from_bytes(bytes).unwrap_or_else(|e| panic!("v{version} align {alignment:?}: {e}"));
            assert_eq!(g.version, version);
            let align = u64::from(alignment.unwrap_or(32));
            assert_eq!(g.alignment, align);
            assert_eq!(g.data_offset, layout.data_offset);
            assert_eq!(g.data_offset % align, 0);
            // Metadata: same order, same values, bit for bit.
            assert_eq!(g.metadata.len(), w.metadata.len());
            for ((k1, v1), (k2, v2)) in g.metadata.iter().zip(&w.metadata) {
                assert_eq!(k1, k2);
                assert_eq!(v1, v2, "key {k1}");
            }
            assert_eq!(
                g.get("t.f32").and_then(Value::as_f32).map(f32::to_bits),
                Some((-1.5e-7f32).to_bits())
            );
            // Tensors: offsets aligned, data identical, byte sizes from the type table.
            for (t, wt) in g.tensors.iter().zip(&w.tensors) {
                assert_eq!(t.name, wt.name);
                assert_eq!(t.dims, wt.dims);
                assert_eq!(t.offset % align, 0, "{}", t.name);
                assert_eq!(t.byte_size, wt.data.len() as u64, "{}", t.name);
                assert_eq!(g.tensor_data(t).unwrap(), &wt.data[..]);
                let padded = align_up(t.byte_size, align).unwrap();
                if t.is_last {
                    assert_eq!(t.span, t.byte_size);
                } else {
                    assert_eq!(t.span, padded, "{}", t.name);
                }
            }
        }
    }
}

#[test]
fn accessors_convert_between_integer_widths() {
    let g = GgufFile::from_bytes(writer_with_all_values(3, None).to_bytes()).unwrap();
    assert_eq!(g.get("t.u8").and_then(Value::as_u64), Some(0xfe));
    assert_eq!(g.get("t.i8").and_then(Value::as_i64), Some(-7));
    assert_eq!(g.get("t.i8").and_then(Value::as_u64), None, "negative is not a u64");
    assert_eq!(g.get("t.u64").and_then(Value::as_i64), Some(0x0123_4567_89ab_cdef));
    assert_eq!(g.get("t.bool.true").and_then(Value::as_bool), Some(true));
    assert_eq!(g.get_str("t.string"), Some("héllo · 世界 🦀"));
    assert_eq!(g.get("a.string").and_then(Value::as_array).map(<[Value]>::len), Some(2));
    assert_eq!(g.architecture(), "llama");
    assert!(g.get("absent").is_none());
    assert!(matches!(
        g.tensor_data_by_name("absent"),
        Err(GgufError::NoSuchTensor { .. })
    ));
}

#[test]
fn json_rendering_summarises_long_arrays() {
    let v = Value::Array(ValueType::U32, (0..100).map(Value::U32).collect());
    let j = v.to_json(Some(4));
    assert_eq!(j["len"], 100);
    assert_eq!(j["array_of"], "u32");
    assert_eq!(j["head"].as_array().unwrap().len(), 4);
    assert_eq!(v.to_json(None).as_array().unwrap().len(), 100);
}

fn one_tensor_file(arch: &str, type_id: u32, dims: &[u64], data_len: usize) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String(arch.into()));
    w.tensor("w", dims, type_id, vec![0; data_len]);
    w.to_bytes()
}

#[test]
fn dialect_follows_architecture_first() {
    for arch in ["bitnet", "bitnet-25", "bitnet-b1.58"] {
        let g = GgufFile::from_bytes(one_tensor_file(arch, 0, &[4], 16)).unwrap();
        assert_eq!(g.dialect, Dialect::BitnetFork, "{arch}");
        assert!(g.dialect_reason.contains(arch), "{}", g.dialect_reason);
    }
    let g = GgufFile::from_bytes(one_tensor_file("llama", 0, &[4], 16)).unwrap();
    assert_eq!(g.dialect, Dialect::Upstream);
}

#[test]
fn fork_only_type_ids_select_the_fork_table() {
    // I2_S (36) under a non-BitNet architecture: n/4 + 32 bytes.
    let g = GgufFile::from_bytes(one_tensor_file("llama", 36, &[128, 2], 64 + 32)).unwrap();
    assert_eq!(g.dialect, Dialect::BitnetFork);
    assert!(g.dialect_reason.contains("36"), "{}", g.dialect_reason);
    assert_eq!(g.tensors[0].ggml_type, GgmlType::I2_S);
    // Q4_0_4_4 (31), removed upstream.
    let g = GgufFile::from_bytes(one_tensor_file("llama", 31, &[32, 1], 18)).unwrap();
    assert_eq!(g.dialect, Dialect::BitnetFork);
    assert_eq!(g.tensors[0].ggml_type, GgmlType::Q4_0_4_4);
}

#[test]
fn type_39_is_decided_by_span_not_by_id() {
    // [512, 4]: MXFP4 needs 2048/32·17 = 1088 bytes, TL2 needs align32(213 + 256) + 32 = 512.
    let mx = GgmlType::MXFP4.byte_size(&[512, 4]).unwrap();
    let tl2 = GgmlType::TL2.byte_size(&[512, 4]).unwrap();
    assert_eq!((mx, tl2), (1088, 512));

    let g = GgufFile::from_bytes(one_tensor_file("gpt-oss", 39, &[512, 4], mx as usize)).unwrap();
    assert_eq!(g.dialect, Dialect::Upstream);
    assert_eq!(g.tensors[0].ggml_type, GgmlType::MXFP4);
    assert!(g.dialect_reason.contains("MXFP4"), "{}", g.dialect_reason);

    let g = GgufFile::from_bytes(one_tensor_file("gpt-oss", 39, &[512, 4], tl2 as usize)).unwrap();
    assert_eq!(g.dialect, Dialect::BitnetFork);
    assert_eq!(g.tensors[0].ggml_type, GgmlType::TL2);
    assert!(g.dialect_reason.contains("TL2"), "{}", g.dialect_reason);

    // Under a BitNet architecture the id is TL2 whatever the span.
    let g = GgufFile::from_bytes(one_tensor_file("bitnet", 39, &[512, 4], tl2 as usize)).unwrap();
    assert_eq!(g.tensors[0].ggml_type, GgmlType::TL2);
}

#[test]
fn i2s_tensor_data_is_codes_plus_tail() {
    let mut data = vec![0xAA; 256 / 4];
    data.extend_from_slice(&0.75f32.to_le_bytes());
    data.extend_from_slice(&[0; 28]);
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("bitnet-b1.58".into()));
    w.tensor("w", &[128, 2], 36, data.clone());
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let t = &g.tensors[0];
    assert_eq!(t.byte_size, 256 / 4 + 32);
    assert_eq!(g.tensor_data(t).unwrap(), &data[..]);
    assert_eq!(t.n_rows(), 2);
    assert_eq!(t.row_len(), 128);
}

#[test]
fn tensors_may_be_listed_out_of_offset_order() {
    // Byte surgery: swap the stored offsets of two equally sized tensors; spans follow offsets.
    let mut w = GgufWriter::new();
    w.tensor("a", &[8], 0, vec![1; 32]);
    w.tensor("b", &[8], 0, vec![2; 32]);
    let (mut bytes, layout) = w.to_bytes_with_layout();
    let off_field = |i: usize| {
        let info = layout.tensor_info_offsets[i] as usize;
        info + 8 + 1 + 4 + 8 + 4 // name len, name, n_dims, one dim, type
    };
    let (fa, fb) = (off_field(0), off_field(1));
    bytes[fa..fa + 8].copy_from_slice(&32u64.to_le_bytes());
    bytes[fb..fb + 8].copy_from_slice(&0u64.to_le_bytes());
    let g = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(g.tensor_data_by_name("a").unwrap(), &[2; 32]);
    assert_eq!(g.tensor_data_by_name("b").unwrap(), &[1; 32]);
    assert!(g.tensor("a").unwrap().is_last);
    assert!(!g.tensor("b").unwrap().is_last);
}

#[test]
fn open_reads_from_disk_and_names_the_file_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    writer_with_all_values(3, Some(64))
        .write_to(std::fs::File::create(&path).unwrap())
        .unwrap();
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(g.alignment, 64);
    assert_eq!(g.path.as_deref(), Some(path.display().to_string().as_str()));
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF").unwrap();
    let e = GgufFile::open(&bad).unwrap_err();
    assert!(e.to_string().contains("bad.gguf"), "{e}");
    assert!(matches!(e.source, GgufError::TooShortForHeader { len: 4 }));
}
