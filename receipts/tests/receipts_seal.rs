//! Sealing, signing, and the validate-before-write / validate-after-read file functions.

use receipts::examples;
use receipts::seal::{check_digest, check_signature, read_receipt, seal, signing_key_from_hex, write_receipt};
use receipts::{BenchReceipt, ParityReceipt, ReceiptError};

#[test]
fn write_then_read_round_trips_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r.json");
    let r = examples::parity_receipt_drifting().expect("example");
    write_receipt(&p, &r).expect("writes");
    let back: ParityReceipt = read_receipt(&p).expect("reads");
    assert_eq!(back, r);
    assert!(!dir.path().join("r.json.tmp").exists());
}

#[test]
fn unsealed_or_stale_receipts_are_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r.json");
    let mut r = examples::parity_receipt().expect("example");
    r.token_ids.push(7);
    let err = write_receipt(&p, &r).expect_err("stale digest");
    assert!(
        matches!(&err, ReceiptError::DigestMismatch { edited, .. } if edited == &["token_ids".to_owned()]),
        "{err}"
    );
    assert!(!p.exists());
    r.summary.min_cosine = f64::NAN;
    assert!(write_receipt(&p, &r).is_err(), "NaN cannot be written");
    assert!(!p.exists());
}

#[test]
fn schema_invalid_receipts_are_not_sealed() {
    let mut r = examples::parity_receipt().expect("example");
    r.tokenizer_sha256 = "not hex".into();
    let err = seal(&r, None).expect_err("invalid");
    assert!(err.to_string().contains("/tokenizer_sha256"), "{err}");
}

#[test]
fn reading_rejects_tampering_and_the_wrong_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r.json");
    write_receipt(&p, &examples::parity_receipt().expect("example")).expect("writes");
    assert!(matches!(
        read_receipt::<BenchReceipt>(&p),
        Err(ReceiptError::UnknownSchema { .. })
    ));
    let text = std::fs::read_to_string(&p)
        .expect("read")
        .replace("\"pass\": true", "\"pass\": false");
    std::fs::write(&p, text).expect("write");
    let err = read_receipt::<ParityReceipt>(&p).expect_err("tampered");
    assert!(err.to_string().contains("edited: pass"), "{err}");
}

#[test]
fn signatures_bind_the_digest() {
    let key = signing_key_from_hex(&"5a".repeat(32)).expect("key");
    let r = seal(&examples::parity_receipt().expect("example"), Some(&key)).expect("signs");
    let doc = serde_json::to_value(&r).expect("ser");
    check_digest(&doc).expect("digest");
    let pk = check_signature(&doc, None).expect("verifies").expect("signed");
    assert_eq!(pk, receipts::seal::public_key_hex(&key));
    // Same contents, same digest: signing does not change it.
    assert_eq!(r.digest, examples::parity_receipt().expect("example").digest);
    let mut forged = doc.clone();
    forged["digest"] = serde_json::json!("00".repeat(32));
    assert!(check_signature(&forged, None).is_err());
    assert!(signing_key_from_hex("abc").is_err() && signing_key_from_hex(&"00".repeat(31)).is_err());
}

/// With `PARITY_DUMP_EXAMPLES=<dir>`, write every example there (for scripts/validate-receipts.py).
#[test]
fn dump_examples_when_asked() {
    let Some(dir) = std::env::var_os("PARITY_DUMP_EXAMPLES") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_receipt(&dir.join("parity.json"), &examples::parity_receipt().expect("example")).expect("write");
    write_receipt(
        &dir.join("parity-drifting.json"),
        &examples::parity_receipt_drifting().expect("example"),
    )
    .expect("write");
    write_receipt(
        &dir.join("bench.json"),
        &examples::bench_receipt(120.0).expect("example"),
    )
    .expect("write");
    write_receipt(
        &dir.join("inference.json"),
        &examples::inference_receipt().expect("example"),
    )
    .expect("write");
    let manifest = examples::recorded_reference()
        .expect("example")
        .to_json()
        .expect("json");
    std::fs::write(dir.join("manifest.json"), manifest).expect("write");
}

#[test]
fn concurrent_writers_to_one_path_never_collide() {
    // Before: every writer used `<path>.tmp`, so one writer's rename found the file gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("same.json");
    let receipt = examples::parity_receipt().expect("example");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| (0..25).map(|_| write_receipt(&path, &receipt)).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            for r in h.join().expect("writer thread") {
                r.expect("every concurrent write succeeds");
            }
        }
    });
    let back: receipts::ParityReceipt = read_receipt(&path).expect("a whole receipt");
    assert_eq!(back.pass, receipt.pass);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        [std::ffi::OsString::from("same.json")],
        "no temporary files left behind"
    );
}
