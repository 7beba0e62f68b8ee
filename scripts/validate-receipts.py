#!/usr/bin/env python3
"""Validate receipts and recorded-reference manifests against schemas/ with python-jsonschema.

An independent second implementation of the schema check that `parity verify` performs with the
Rust jsonschema crate. It checks the schema only (not the digest, signature or gates). Each document
is checked against its bundled schema file alone, exactly as a user would: schemas/<kind>.v1.json
embeds the shared definitions, so no registry and no network are needed.

Usage:
    python3 -m pip install jsonschema        # once
    scripts/validate-receipts.py FILE.json [FILE.json ...]

The schema is chosen by the document's `schema_version`; a document without one is treated as a
recorded-reference manifest (manifests written before v1 carry none). Exit 0 when every file is
valid, 1 when one is not, 2 on a usage or setup error.
"""

import json
import pathlib
import sys

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "schemas"
BY_VERSION = {
    "parity-receipt/v1": "parity-receipt.v1.json",
    "bench-receipt/v1": "bench-receipt.v1.json",
    "inference-receipt/v1": "inference-receipt.v1.json",
    "recorded-reference/v1": "recorded-reference.v1.json",
}


def schema_file(doc):
    """The bundled schema file for a document, or None when its schema_version is unknown."""
    version = doc.get("schema_version", "recorded-reference/v1") if isinstance(doc, dict) else None
    name = BY_VERSION.get(version)
    return (version, SCHEMAS / name) if name else (version, None)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "--schema-for":
        # Used by scripts/check-receipts.sh: print the schema file of each document, one a line.
        for name in argv[2:]:
            _, path = schema_file(json.loads(pathlib.Path(name).read_text()))
            print(path or "")
        return 0
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        print("needs python-jsonschema: python3 -m pip install jsonschema", file=sys.stderr)
        return 2

    failed = False
    for name in argv[1:]:
        try:
            doc = json.loads(pathlib.Path(name).read_text())
        except (OSError, ValueError) as e:
            print(f"{name}: unreadable: {e}")
            failed = True
            continue
        version, path = schema_file(doc)
        if path is None:
            print(f"{name}: unknown schema_version {version!r}")
            failed = True
            continue
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            failed = True
            print(f"{name}: INVALID ({version})")
            for e in errors:
                path = "/" + "/".join(str(p) for p in e.absolute_path)
                print(f"  {path}: {e.message}")
        else:
            print(f"{name}: ok ({version})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
