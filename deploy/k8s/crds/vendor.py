"""Vendor the openAPIV3Schema of prometheus-operator's custom resources, from its published CRDs.

    python deploy/k8s/crds/vendor.py --source URL CRD.yaml... [--keep-descriptions]

Reads each CustomResourceDefinition file, takes the schema of the version the manifests
use (the storage version), drops the human `description` texts (most of the bytes; the
schema's meaning does not depend on them) and writes `<group>_<version>_<kind>.json`
beside this file: the schema plus where it came from (`source`, the CRD file's SHA-256).
tests/deploy/test_k8s.py validates the PodMonitor and PrometheusRule of the rendered
manifests against these files. Where the CRDs were taken from, and which versions: README.md.

Strimzi's CRDs are refused: Strimzi resources are checked with the npm package pinned in
strimzi/package.json (README.md), and no Strimzi schema is vendored here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
#: API groups whose schemas come from elsewhere (README.md), never from a file here
NOT_VENDORED = {"kafka.strimzi.io": "strimzi/package.json (the npm package)",
                "core.strimzi.io": "strimzi/package.json (the npm package)"}


def strip_descriptions(node: Any) -> Any:
    """The schema without `description` texts (a property *named* description stays)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
            else:
                out[key] = strip_descriptions(value)
        return out
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


def vendor(crd_file: Path, source: str, keep_descriptions: bool = False) -> Path:
    raw = crd_file.read_bytes()
    crd = next(doc for doc in yaml.safe_load_all(raw) if doc)
    if crd.get("kind") != "CustomResourceDefinition":
        raise SystemExit(f"{crd_file}: not a CustomResourceDefinition")
    spec = crd["spec"]
    if spec["group"] in NOT_VENDORED:
        raise SystemExit(f"{crd_file}: {spec['group']} is not vendored: its schemas come from "
                         f"{NOT_VENDORED[spec['group']]}, see deploy/k8s/crds/README.md")
    version = next(v for v in spec["versions"] if v.get("storage"))
    schema = version["schema"]["openAPIV3Schema"]
    document = {
        "apiVersion": f"{spec['group']}/{version['name']}",
        "kind": spec["names"]["kind"],
        "crd": crd["metadata"]["name"],
        "source": source,
        "crd_sha256": hashlib.sha256(raw).hexdigest(),
        "openAPIV3Schema": schema if keep_descriptions else strip_descriptions(schema),
    }
    target = HERE / f"{spec['group']}_{version['name']}_{spec['names']['kind'].lower()}.json"
    target.write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                      encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crds", nargs="+", type=Path, help="CustomResourceDefinition YAML files")
    parser.add_argument("--source", required=True,
                        help="where the CRD files come from (release, URL), recorded in the output")
    parser.add_argument("--keep-descriptions", action="store_true")
    args = parser.parse_args(argv)
    for crd_file in args.crds:
        print(vendor(crd_file, args.source, args.keep_descriptions).relative_to(HERE.parents[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
