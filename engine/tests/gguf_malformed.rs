//! Malformed-input corpus: each case is a valid file from the writer plus byte surgery, and must
//! fail with one specific typed [`GgufError`] variant, never a panic. Together the cases cover
//! every variant a byte sequence can produce (all but `Io` and `DataOffsetOverflow`, which need a
//! missing path and a > 2^64-byte file respectively; `Io` is covered separately).

use std::collections::BTreeSet;

use engine::gguf::{GgufError, GgufFile, GgufWriter, Layout, Value, ValueType, MAX_ARRAY_DEPTH, MAX_METADATA_VALUES};

/// A small valid file: two KVs (architecture, one u32) and two tensors (I2_S [128, 2], then F32 [8]).
fn base() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("bitnet-b1.58".into()));
    w.kv("x.count", Value::U32(5));
    let mut i2s = vec![0x55; 64];
    i2s.extend_from_slice(&1.0f32.to_le_bytes());
    i2s.extend_from_slice(&[0; 28]);
    w.tensor("blk.0.attn_q.weight", &[128, 2], 36, i2s);
    w.tensor("norm.weight", &[8], 0, vec![0; 32]);
    w
}

fn build(w: &GgufWriter) -> (Vec<u8>, Layout) {
    w.to_bytes_with_layout()
}

fn put_u32(b: &mut [u8], at: u64, v: u32) {
    b[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: u64, v: u64) {
    b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
}

/// Offsets inside tensor-info record `i` of the base file (name, n_dims, dims, type, offset).
struct InfoFields {
    n_dims: u64,
    dim0: u64,
    type_id: u64,
    offset: u64,
}

fn info_fields(bytes: &[u8], layout: &Layout, i: usize) -> InfoFields {
    let at = layout.tensor_info_offsets[i];
    let name_len = u64::from_le_bytes(bytes[at as usize..at as usize + 8].try_into().unwrap());
    let n_dims_at = at + 8 + name_len;
    let n_dims = u32::from_le_bytes(bytes[n_dims_at as usize..n_dims_at as usize + 4].try_into().unwrap()) as u64;
    let dim0 = n_dims_at + 4;
    let type_id = dim0 + 8 * n_dims;
    InfoFields {
        n_dims: n_dims_at,
        dim0,
        type_id,
        offset: type_id + 4,
    }
}

fn parse(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(g) => panic!("expected an error, parsed {g:?}"),
        Err(e) => e,
    }
}

/// Build the corpus: (case name, error). Each closure gets fresh bytes.
fn corpus() -> Vec<(&'static str, GgufError)> {
    let mut out = Vec::new();
    let (good, lay) = build(&base());
    let mut case = |name: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        out.push((name, parse(b)));
    };

    case("file shorter than the header", &|b| b.truncate(20));
    case("bad magic", &|b| b[0..4].copy_from_slice(b"GGML"));
    case("version 1", &|b| put_u32(b, 4, 1));
    case("first key longer than the file", &|b| {
        put_u64(b, lay.kv_offsets[0], 1 << 40)
    });
    case("truncated inside the tensor table", &|b| {
        b.truncate(lay.tensor_info_offsets[1] as usize + 10)
    });
    case("huge metadata count", &|b| put_u64(b, 16, u64::MAX / 2));
    case("unknown value type 13", &|b| put_u32(b, lay.kv_type_offsets[1], 13));
    case("bool byte 2", &|b| {
        put_u32(b, lay.kv_type_offsets[1], ValueType::Bool as u32);
        b[lay.kv_type_offsets[1] as usize + 4] = 2;
    });
    case("key is not UTF-8", &|b| b[lay.kv_offsets[1] as usize + 8] = 0xff);
    case("duplicate key", &|b| {
        // Replace key 1 ("x.count": 8-byte length + 7 bytes) with a copy of key 0.
        let (k0, k1) = (lay.kv_offsets[0] as usize, lay.kv_offsets[1] as usize);
        let key0 = b[k0..k0 + 8 + 20].to_vec();
        b.splice(k1..k1 + 15, key0);
    });
    case("empty key", &|b| {
        let k1 = lay.kv_offsets[1] as usize;
        b.splice(k1..k1 + 15, 0u64.to_le_bytes());
    });
    case("general.alignment of type u64", &|b| {
        let mut w = base();
        w.kv("general.alignment", Value::U64(32));
        *b = build(&w).0;
    });
    case("general.alignment 48", &|b| {
        let mut w = base();
        w.kv("general.alignment", Value::U32(48));
        *b = build(&w).0;
    });
    case("arrays nested 9 deep", &|b| {
        let mut v = Value::Array(ValueType::U8, vec![Value::U8(1)]);
        for _ in 0..MAX_ARRAY_DEPTH {
            v = Value::Array(ValueType::Array, vec![v]);
        }
        let mut w = base();
        w.kv("x.deep", v);
        *b = build(&w).0;
    });
    case("more metadata values than the cap", &|b| {
        // Declares (cap + 1) u8 elements and really has them: only the value cap can refuse it.
        let n = MAX_METADATA_VALUES as usize + 1;
        let mut w = GgufWriter::new();
        w.kv("x.big", Value::Array(ValueType::U8, vec![]));
        let (mut bytes, l) = build(&w);
        put_u64(&mut bytes, l.kv_type_offsets[0] + 8, n as u64);
        bytes.resize(bytes.len() + n, 0);
        *b = bytes;
    });
    case("tensor name of 64 bytes", &|b| {
        let mut w = base();
        w.tensor(&"n".repeat(64), &[1], 0, vec![0; 4]);
        *b = build(&w).0;
    });
    case("n_dims 0", &|b| {
        let f = info_fields(b, &lay, 0);
        put_u32(b, f.n_dims, 0);
    });
    case("zero dimension", &|b| {
        let f = info_fields(b, &lay, 0);
        put_u64(b, f.dim0, 0);
    });
    case("dims overflow u64", &|b| {
        let mut w = base();
        w.tensor("big", &[1 << 32, 1 << 32], 0, vec![]);
        *b = build(&w).0;
    });
    case("duplicate tensor name", &|b| {
        let mut w = base();
        w.tensor("norm.weight", &[8], 0, vec![0; 32]);
        *b = build(&w).0;
    });
    case("unknown tensor type 100", &|b| {
        let f = info_fields(b, &lay, 0);
        put_u32(b, f.type_id, 100);
    });
    case("Q8_0 row of 33", &|b| {
        let mut w = base();
        w.tensor("q", &[33], 8, vec![0; 34]);
        *b = build(&w).0;
    });
    case("I8_S in a file", &|b| {
        let f = info_fields(b, &lay, 0);
        put_u32(b, f.type_id, 37);
    });
    case("type 39 whose span fits neither MXFP4 nor TL2", &|b| {
        let mut w = GgufWriter::new();
        w.kv("general.architecture", Value::String("gpt-oss".into()));
        w.tensor("m", &[512, 4], 39, vec![0; 100]);
        *b = build(&w).0;
    });
    case("misaligned tensor offset", &|b| {
        let f = info_fields(b, &lay, 1);
        put_u64(b, f.offset, lay.tensor_offsets[1] + 4);
    });
    case("two tensors at one offset", &|b| {
        let f = info_fields(b, &lay, 1);
        put_u64(b, f.offset, 0);
    });
    case("truncated data", &|b| b.truncate(lay.data_offset as usize + 16));
    case("offset far past the end", &|b| {
        let f = info_fields(b, &lay, 0);
        put_u64(b, f.offset, u64::MAX - 31);
    });
    case("overlapping tensors", &|b| {
        // Point the F32 tensor into the I2_S codes: the I2_S span drops below its n/4 code bytes.
        let f = info_fields(b, &lay, 1);
        put_u64(b, f.offset, 32);
    });
    case("huge tensor count", &|b| put_u64(b, 8, 1 << 40));
    case("n_dims 5", &|b| {
        let f = info_fields(b, &lay, 0);
        put_u32(b, f.n_dims, 5);
    });
    case("truncated header counts", &|b| b.truncate(23));
    out
}

/// Recognises the expected variant (and its key fields).
type Check = fn(&GgufError) -> bool;

#[test]
fn every_case_fails_with_its_own_variant() {
    let expect: &[(&str, Check)] = &[
        ("file shorter than the header", |e| {
            matches!(e, GgufError::TooShortForHeader { len: 20 })
        }),
        (
            "bad magic",
            |e| matches!(e, GgufError::BadMagic { found } if found == b"GGML"),
        ),
        ("version 1", |e| {
            matches!(e, GgufError::UnsupportedVersion { version: 1 })
        }),
        ("first key longer than the file", |e| {
            matches!(
                e,
                GgufError::Truncated {
                    need: 1099511627776,
                    ..
                }
            )
        }),
        ("truncated inside the tensor table", |e| {
            matches!(e, GgufError::Truncated { .. })
        }),
        ("huge metadata count", |e| {
            matches!(e, GgufError::CountTooLarge { offset: 16, .. })
        }),
        ("unknown value type 13", |e| {
            matches!(e, GgufError::UnknownValueType { type_id: 13, .. })
        }),
        ("bool byte 2", |e| matches!(e, GgufError::BadBool { byte: 2, .. })),
        ("key is not UTF-8", |e| matches!(e, GgufError::BadUtf8 { .. })),
        (
            "duplicate key",
            |e| matches!(e, GgufError::DuplicateKey { key, .. } if key == "general.architecture"),
        ),
        ("empty key", |e| matches!(e, GgufError::EmptyKey { .. })),
        ("general.alignment of type u64", |e| {
            matches!(e, GgufError::WrongValueType { found: "u64", .. })
        }),
        ("general.alignment 48", |e| {
            matches!(e, GgufError::BadAlignment { value: 48 })
        }),
        (
            "arrays nested 9 deep",
            |e| matches!(e, GgufError::NestingTooDeep { key, .. } if key == "x.deep"),
        ),
        ("more metadata values than the cap", |e| {
            matches!(e, GgufError::TooManyValues { .. })
        }),
        ("tensor name of 64 bytes", |e| {
            matches!(e, GgufError::TensorNameTooLong { len: 64, .. })
        }),
        ("n_dims 0", |e| matches!(e, GgufError::BadDims { n_dims: 0, .. })),
        ("zero dimension", |e| matches!(e, GgufError::ZeroDim { index: 0, .. })),
        (
            "dims overflow u64",
            |e| matches!(e, GgufError::DimsOverflow { name, .. } if name == "big"),
        ),
        (
            "duplicate tensor name",
            |e| matches!(e, GgufError::DuplicateTensor { name, .. } if name == "norm.weight"),
        ),
        ("unknown tensor type 100", |e| {
            matches!(e, GgufError::UnknownTensorType { type_id: 100, .. })
        }),
        ("Q8_0 row of 33", |e| {
            matches!(e, GgufError::BadShapeForType { ty: "q8_0", .. })
        }),
        ("I8_S in a file", |e| {
            matches!(e, GgufError::ActivationTypeInFile { .. })
        }),
        ("type 39 whose span fits neither MXFP4 nor TL2", |e| {
            matches!(
                e,
                GgufError::Type39Undecided {
                    span: 100,
                    mxfp4: Some(1088),
                    tl2: Some(512),
                    ..
                }
            )
        }),
        ("misaligned tensor offset", |e| {
            matches!(e, GgufError::MisalignedTensor { .. })
        }),
        ("two tensors at one offset", |e| {
            matches!(e, GgufError::TensorOverlap { .. })
        }),
        ("truncated data", |e| matches!(e, GgufError::TensorOutOfBounds { .. })),
        ("offset far past the end", |e| {
            matches!(e, GgufError::TensorOutOfBounds { .. })
        }),
        (
            "overlapping tensors",
            |e| matches!(e, GgufError::TensorOverlap { name, other, .. } if name == "blk.0.attn_q.weight" && other == "norm.weight"),
        ),
        ("huge tensor count", |e| {
            matches!(e, GgufError::CountTooLarge { offset: 8, .. })
        }),
        ("n_dims 5", |e| matches!(e, GgufError::BadDims { n_dims: 5, .. })),
        ("truncated header counts", |e| {
            matches!(e, GgufError::TooShortForHeader { len: 23 })
        }),
    ];
    let corpus = corpus();
    assert_eq!(corpus.len(), expect.len());
    let mut variants = BTreeSet::new();
    for ((name, err), (want_name, check)) in corpus.iter().zip(expect) {
        assert_eq!(name, want_name);
        assert!(check(err), "case {name:?}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        variants.insert(format!("{:?}", std::mem::discriminant(err)));
    }
    assert!(variants.len() >= 25, "only {} distinct variants", variants.len());
}

#[test]
fn span_too_short_and_io_have_their_own_variants() {
    // A type-36 tensor whose span is only the n/4 code region parses (flavor detection judges it),
    // but its n/4 + 32 bytes are never handed out.
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("bitnet-b1.58".into()));
    w.tensor("w", &[256, 4], 36, vec![0x55; 256]);
    w.tensor("n", &[8], 0, vec![0; 32]);
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let e = g.tensor_data_by_name("w").unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::SpanTooShort {
                need: 288,
                span: 256,
                ..
            }
        ),
        "{e:?}"
    );
    let e = GgufFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(matches!(e.source, GgufError::Io(_)));
}

#[test]
fn every_prefix_of_a_valid_file_is_an_error_not_a_panic() {
    let (good, _) = build(&base());
    assert!(GgufFile::from_bytes(good.clone()).is_ok());
    for len in 0..good.len() {
        assert!(
            GgufFile::from_bytes(good[..len].to_vec()).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
}

#[test]
fn single_byte_corruptions_never_panic() {
    // Every byte of the header and tables set to a few hostile values: Ok or a typed error.
    let (good, lay) = build(&base());
    let mut errors = 0;
    for at in 0..lay.data_offset as usize {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut b = good.clone();
            b[at] = v;
            if GgufFile::from_bytes(b).is_err() {
                errors += 1;
            }
        }
    }
    assert!(errors > 0);
}
