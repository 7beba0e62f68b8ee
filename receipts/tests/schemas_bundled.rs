//! `schemas/<kind>.v1.json` are generated from `schemas/src/` (the kind's source with the defs schema embedded
//! as a resource under `$defs`): they must be up to date, carry exactly the sources' content, and need no
//! network to resolve. `PARITY_BLESS=1 cargo test -p parity-receipts --test schemas_bundled` rewrites them.

use std::path::{Path, PathBuf};

use receipts::schema::{bundle, SchemaKind, DEFS_ID, DEFS_KEY};
use serde_json::Value;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bundled_schemas_are_generated_from_the_sources() {
    let dir = schemas_dir();
    let defs = read(&dir.join("src/defs.v1.json"));
    for kind in SchemaKind::ALL {
        let source = read(&dir.join("src").join(kind.file_name()));
        let want = bundle(kind, &source, &defs).unwrap();
        let path = dir.join(kind.file_name());
        if std::env::var_os("PARITY_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
            eprintln!("blessed {}", path.display());
            continue;
        }
        assert!(
            read(&path) == want,
            "{} is stale: edit schemas/src/, then PARITY_BLESS=1 cargo test -p parity-receipts --test schemas_bundled",
            path.display()
        );
        // The bundle is the source plus the defs resource, nothing else.
        let mut bundled: Value = serde_json::from_str(&want).unwrap();
        let obj = bundled.as_object_mut().unwrap();
        let embedded = obj.remove("$defs").unwrap();
        obj.remove("$comment");
        assert_eq!(bundled, serde_json::from_str::<Value>(&source).unwrap(), "{kind:?}");
        assert_eq!(
            embedded[DEFS_KEY],
            serde_json::from_str::<Value>(&defs).unwrap(),
            "{kind:?}"
        );
    }
}

/// Every `$ref` of a bundled schema points into the file itself or at the embedded defs resource.
#[test]
fn bundled_schemas_refer_to_nothing_outside() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => out.push(r),
                _ => refs(v, out),
            }),
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    for kind in SchemaKind::ALL {
        let doc: Value = serde_json::from_str(kind.source()).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            assert!(
                r.starts_with('#') || r.starts_with(&format!("{DEFS_ID}#")),
                "{kind:?}: {r}"
            );
        }
    }
}
