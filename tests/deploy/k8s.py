"""Render and validate deploy/k8s offline: kustomize, Kubernetes' schemas, the operators' CRDs.

* **kustomize**: ``kustomize`` on the PATH, else ``kubectl kustomize`` (kubectl 1.24+
  embeds kustomize v4/v5), else a kustomize built once from the Go module proxy into
  ``$CHECKPOINT_CACHE/tools`` (``go install sigs.k8s.io/kustomize/kustomize/v5@<pinned>``,
  about a minute and a half on 2 cores). None of them: the test fails, it never skips.
* **Core kinds** (StatefulSet, Service, ...): the ``kubernetes-validate`` package's
  schemas of `K8S_VERSION`, strict (an unknown field is an error, as the API server's
  strict field validation makes it on ``kubectl apply``).
* **Strimzi** (Kafka, KafkaNodePool, KafkaTopic, KafkaUser): the npm package
  ``@kubernetes-models/strimzi-kafka-operator``, pinned and locked in
  deploy/k8s/crds/strimzi/ and installed with ``npm ci`` into ``$CHECKPOINT_CACHE/tools``
  on first use (Node.js and npm needed: without them the test fails, it never skips);
  its validators, plus a check of field names against its type declarations
  (tests/deploy/strimzi.py; what is and is not checked: deploy/k8s/crds/README.md).
* **prometheus-operator** (PodMonitor, PrometheusRule): the ``openAPIV3Schema`` of the
  operator's published CRDs, vendored in deploy/k8s/crds/ (README there), read as JSON
  Schema with the Kubernetes extensions resolved and unknown fields refused where the API
  server would prune them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from tests.deploy import strimzi

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
CRDS = K8S / "crds"
#: the oldest Kubernetes the manifests are meant for (Strimzi 0.47 supports 1.25+; the
#: StatefulSet's PVC retention policy is on by default from 1.27)
K8S_VERSION = "1.30"
#: the kustomize built when neither kustomize nor a kubectl with kustomize v4+ is installed
#: (the one kubectl 1.32 embeds)
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.5.0"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class RenderError(RuntimeError):
    """kustomize refused a kustomization; the message is its stderr."""


# ----------------------------------------------------------------------------- render
def kustomizations() -> list[Path]:
    """Every kustomization under deploy/k8s that is meant to be applied or built on."""
    found = [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]
    return [p for p in found if (p / "kustomization.yaml").exists()]


def _kubectl_kustomize_major(kubectl: str) -> int:
    done = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True,
                          text=True, timeout=60)
    try:
        version = json.loads(done.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        return 0
    match = re.match(r"v?(\d+)\.", version)
    return int(match[1]) if match else 0


def tools_dir() -> Path:
    """Where tools the tests build or install are kept between runs."""
    base = os.environ.get("CHECKPOINT_CACHE") or str(Path.home() / ".cache" / "checkpoint-streams")
    return Path(base) / "tools"


def _cache_dir() -> Path:
    return tools_dir() / f"kustomize-{KUSTOMIZE_VERSION}"


def _go() -> str | None:
    return shutil.which("go") or next((str(p) for p in (Path("/usr/local/go/bin/go"),) if p.exists()), None)


def find_kustomize(build: bool = True) -> tuple[list[str], str]:
    """The command that renders a kustomization directory (its path appended), and what it is.

    Raises ``LookupError`` naming what to install when there is nothing to render with.
    """
    if path := shutil.which("kustomize"):
        return [path, "build"], f"kustomize ({path})"
    if (kubectl := shutil.which("kubectl")) and _kubectl_kustomize_major(kubectl) >= 4:
        return [kubectl, "kustomize"], f"kubectl kustomize ({kubectl})"
    built = _cache_dir() / "kustomize"
    if built.exists():
        return [str(built), "build"], f"kustomize {KUSTOMIZE_VERSION} ({built})"
    go = _go()
    if build and go:
        built.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(built.parent), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        done = subprocess.run([go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"], env=env,
                              capture_output=True, text=True, timeout=900)
        if done.returncode == 0 and built.exists():
            return [str(built), "build"], f"kustomize {KUSTOMIZE_VERSION} (built: {built})"
        raise LookupError(f"go install {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION} failed:\n{done.stderr[-2000:]}")
    raise LookupError("nothing renders kustomizations here: install kubectl (1.24+) or kustomize, "
                      f"or Go (then `go install {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}` is done for you)")


def render(command: list[str], directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RenderError(f"{' '.join(command)} {directory}: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


# --------------------------------------------------------------------------- validate
@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


def _python_regex(pattern: str) -> str:
    """An RE2 pattern (Go, the API server) for Python: inline flags move to the front."""
    flags = "".join(sorted(set("".join(re.findall(r"\(\?([a-z]+)\)", pattern)))))
    return f"(?{flags})" + re.sub(r"\(\?[a-z]+\)", "", pattern) if flags else pattern


def _structural(node: Any) -> Any:
    """An apiextensions openAPIV3Schema as JSON Schema, with the API server's rules.

    ``x-kubernetes-int-or-string`` is "integer or string"; ``nullable`` admits null; an
    object with ``properties`` and neither ``additionalProperties`` nor
    ``x-kubernetes-preserve-unknown-fields`` refuses other fields (the API server would
    prune them silently, or refuse them under strict field validation: a typo either way).
    """
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: (_structural(value) if key not in ("enum", "default", "example") else value)
           for key, value in node.items()}
    if "properties" in out:
        out["properties"] = {name: _structural(sub) for name, sub in node["properties"].items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _python_regex(out["pattern"])
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@cache
def crd_validators() -> dict[tuple[str, str], Draft202012Validator]:
    """(apiVersion, kind) -> validator, from every vendored schema in deploy/k8s/crds/."""
    validators = {}
    for path in sorted(CRDS.glob("*.json")):
        vendored = json.loads(path.read_text(encoding="utf-8"))
        schema = _structural(vendored["openAPIV3Schema"])
        Draft202012Validator.check_schema(schema)
        validators[(vendored["apiVersion"], vendored["kind"])] = Draft202012Validator(schema)
    return validators


def _validate_metadata(obj: dict[str, Any]) -> Iterator[Problem]:
    meta = obj.get("metadata")
    where = describe(obj)
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        yield Problem(where, "metadata.name missing")
        return
    if len(meta["name"]) > 253 or not _NAME.match(meta["name"]):
        yield Problem(where, f"metadata.name {meta['name']!r} is not a DNS-1123 subdomain")
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            if not isinstance(value, str):
                yield Problem(where, f"metadata.{field}[{key}] is not a string: {value!r}")


@cache
def strimzi_models() -> Path:
    """The installed npm package that checks Strimzi resources (``npm ci`` on first use).

    Raises ``LookupError`` naming what is missing (Node.js, npm) or what npm said.
    """
    return strimzi.install(tools_dir())


def validate_all(objects: list[dict[str, Any]]) -> list[Problem]:
    """Everything wrong with the rendered objects (empty: each would be accepted).

    The Strimzi resources among them go to Node.js together, in one call.
    """
    from kubernetes_validate import utils as kv

    custom = [obj for obj in objects if strimzi.is_strimzi(obj)]
    checked = dict(zip(map(id, custom), strimzi.validate(custom, strimzi_models()) if custom else [],
                       strict=True))
    problems: list[Problem] = []
    for obj in objects:
        where = describe(obj)
        problems += _validate_metadata(obj)
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        if id(obj) in checked:
            problems += [Problem(where, message) for message in checked[id(obj)]]
        elif key in crd_validators():
            for error in sorted(crd_validators()[key].iter_errors(obj), key=lambda e: list(e.path)):
                path = ".".join(str(p) for p in error.path) or "(root)"
                problems.append(Problem(where, f"{path}: {error.message}"))
        else:
            try:
                kv.validate(obj, K8S_VERSION, strict=True)
            except kv.SchemaNotFoundError:
                problems.append(Problem(where, f"no schema for {key[0]} {key[1]}: neither a Kubernetes kind "
                                               f"of {K8S_VERSION}, a Strimzi kind nor a CRD vendored in "
                                               "deploy/k8s/crds/"))
            except kv.ValidationError as error:
                path = ".".join(str(p) for p in error.path) or "(root)"
                problems.append(Problem(where, f"{path}: {error.message}"))
    return problems


def validate(obj: dict[str, Any]) -> list[Problem]:
    """Everything wrong with one rendered object (empty: it would be accepted)."""
    return validate_all([obj])
