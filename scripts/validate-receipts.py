#!/usr/bin/env python3
"""Validate receipts and recorded-reference manifests against schemas/ with python-jsonschema.

An independent second implementation of the schema check that `parity verify` performs with the
Rust jsonschema crate. It checks the schema only (not the digest, signature or gates).

Usage:
    python3 -m pip install jsonschema        # once (jsonschema >= 4.18, for `referencing`)
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


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
    except ImportError:
        print("needs python-jsonschema >= 4.18: python3 -m pip install jsonschema", file=sys.stderr)
        return 2

    resources = []
    for path in sorted(SCHEMAS.glob("*.v1.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)

    failed = False
    for name in argv[1:]:
        try:
            doc = json.loads(pathlib.Path(name).read_text())
        except (OSError, ValueError) as e:
            print(f"{name}: unreadable: {e}")
            failed = True
            continue
        version = doc.get("schema_version", "recorded-reference/v1") if isinstance(doc, dict) else None
        if version not in BY_VERSION:
            print(f"{name}: unknown schema_version {version!r}")
            failed = True
            continue
        schema = json.loads((SCHEMAS / BY_VERSION[version]).read_text())
        validator = Draft202012Validator(schema, registry=registry)
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
