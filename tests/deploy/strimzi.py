"""Strimzi custom resources checked with the npm package @kubernetes-models/strimzi-kafka-operator.

The package (pinned in deploy/k8s/crds/strimzi/package.json, every dependency locked in
package-lock.json) is installed once with ``npm ci`` into the tools cache
(``$CHECKPOINT_CACHE/tools``, else ``~/.cache/checkpoint-streams/tools``), in a directory
named after the pinned version and the lock file's hash; Node and npm must be on the PATH.
Two checks, both from that one package:

* **its validators** (``deploy/k8s/crds/strimzi/validate.mjs``: the package's model
  classes, whose ``validate()`` runs the AJV validators compiled from the CRDs' schemas):
  types, enums, patterns, minimum/maximum, required fields, oneOf;
* **field names**, here: those validators take any unknown field (the package's schemas
  leave ``additionalProperties`` open), so every field of the object is looked up in the
  package's own type declarations (``<group>/<version>/<Kind>.d.ts``, generated from the
  same schemas), as the API server's strict field validation would refuse it. A free-form
  object there (``{}``: the CRD's ``x-kubernetes-preserve-unknown-fields``, such as
  ``spec.kafka.config``) takes any field, a map (``[key: string]: T``) any key. A null
  where the declarations name a field is refused too (the validators take null for every
  field; the API server drops it, so the value meant is lost).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "deploy" / "k8s" / "crds" / "strimzi"
PACKAGE = "@kubernetes-models/strimzi-kafka-operator"
#: the API groups whose resources the package models
GROUPS = ("kafka.strimzi.io", "core.strimzi.io")


# ---------------------------------------------------------------------------- install
def pinned_version() -> str:
    """The package's version in package.json: one exact version, never a range."""
    manifest = json.loads((PACKAGE_DIR / "package.json").read_text(encoding="utf-8"))
    version = manifest["dependencies"][PACKAGE]
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"deploy/k8s/crds/strimzi/package.json: {PACKAGE} {version!r} is not one exact version")
    return version


def install_dir(tools: Path) -> Path:
    lock = hashlib.sha256((PACKAGE_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
    return tools / f"strimzi-models-{pinned_version()}-{lock}"


def install(tools: Path) -> Path:
    """The directory whose node_modules/ holds the locked packages (``npm ci`` on first use).

    Raises ``LookupError`` naming what is missing or what npm said.
    """
    target = install_dir(tools)
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise LookupError("Strimzi resources are checked with Node.js and npm: neither is optional "
                          "(Debian: apt-get install nodejs npm; .ci/run does it)")
    if (target / ".installed").exists():
        return target
    if target.exists():                     # not ours to trust: no marker of a finished install
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PACKAGE_DIR / name, work / name)
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=work, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise LookupError(f"npm ci of deploy/k8s/crds/strimzi failed:\n{(done.stderr or done.stdout)[:1500]}")
        (work / ".installed").write_text(f"{PACKAGE} {pinned_version()}\n", encoding="utf-8")
        try:
            work.rename(target)
        except OSError:                     # another run finished first: use its copy
            if not (target / ".installed").exists():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def installed_package(installed: Path) -> dict[str, Any]:
    """The installed package's own package.json (its version; the CRD files it was made from)."""
    path = installed / "node_modules" / Path(*PACKAGE.split("/")) / "package.json"
    return json.loads(path.read_text(encoding="utf-8"))


def generated_from(installed: Path) -> list[str]:
    """The Strimzi releases whose CRD files the package was generated from (its crd-generate input)."""
    inputs = installed_package(installed).get("crd-generate", {}).get("input", [])
    return [m[1] for url in inputs if (m := re.search(r"/releases/download/([^/]+)/strimzi-crds-", url))]


# --------------------------------------------------------------------------- validate
def group_version(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        return "", ""
    group, version = api_version.split("/", 1)
    return group, version


def is_strimzi(obj: Mapping[str, Any]) -> bool:
    return group_version(obj)[0] in GROUPS


def validate(objects: list[dict[str, Any]], installed: Path) -> list[list[str]]:
    """Each object's problems as ``path: message`` (empty: the package's schema takes it, field names too)."""
    if not objects:
        return []
    done = subprocess.run(["node", str(PACKAGE_DIR / "validate.mjs"), str(installed)],
                          input=json.dumps(objects), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"validate.mjs failed ({done.returncode}):\n{done.stderr[-2000:]}")
    answer = json.loads(done.stdout)
    if answer["version"] != pinned_version() or len(answer["results"]) != len(objects):
        raise RuntimeError(f"validate.mjs answered for {answer['package']} {answer['version']}, "
                           f"{len(answer['results'])} results for {len(objects)} objects")
    problems = []
    for obj, result in zip(objects, answer["results"], strict=True):
        found = [f"{_dotted(e['path'])}: {e['message']}" for e in result["errors"]]
        if not any(e["keyword"] == "model" for e in result["errors"]):
            found += unknown_fields(obj, installed)
        problems.append(found)
    return problems


def _dotted(pointer: str) -> str:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return ".".join(parts) or "(root)"


def unknown_fields(obj: Mapping[str, Any], installed: Path) -> list[str]:
    """Fields the package's declarations of the object's kind do not name, and nulls."""
    group, version = group_version(obj)
    shape = declared_shape(installed, group, version, str(obj.get("kind")))
    return list(_check(obj, shape, ""))


def _check(value: Any, shape: Shape, path: str) -> Iterator[str]:
    if shape.anything:
        return
    where = path or "(root)"
    if value is None and not shape.nullable:
        yield f"{where}: is null (the API server drops it: leave the field out or give it a value)"
    elif isinstance(value, dict) and shape.fields is not None:
        for key, sub in value.items():
            if key in shape.fields:
                yield from _check(sub, shape.fields[key], f"{path}.{key}" if path else key)
            elif shape.extra is not None:
                yield from _check(sub, shape.extra, f"{path}.{key}" if path else key)
            else:
                yield f"{where}: Additional properties are not allowed ({key!r} was unexpected)"
    elif isinstance(value, list) and shape.items is not None:
        for index, item in enumerate(value):
            yield from _check(item, shape.items, f"{path}.{index}")
    # anything else is a type the validators judge


# ------------------------------------------------------------- the type declarations
@dataclass(frozen=True)
class Shape:
    """What a declaration says of a value, as far as field names go.

    ``fields``: the members of its object form (None: it has none); ``extra``: the shape
    of any other field (``{}`` and ``[key: string]: T``; None: other fields are refused);
    ``items``: its array form; ``anything``: ``any``, nothing known; ``nullable``: ``null``
    is one of its types.
    """

    fields: Mapping[str, Shape] | None = None
    extra: Shape | None = None
    items: Shape | None = None
    anything: bool = False
    nullable: bool = False


ANY = Shape(anything=True)
SCALAR = Shape()


def merge(a: Shape, b: Shape) -> Shape:
    """One shape for ``a | b`` and ``a & b``: every field either names.

    ``any`` adds nothing: the generator writes a CRD's ``oneOf: [{required: [x]}, ...]``
    as ``T & ({"x": any} | ...)``, about fields T already declares.
    """
    if a.anything:
        return b
    if b.anything:
        return a
    fields: dict[str, Shape] | None = None
    if a.fields is not None or b.fields is not None:
        fields = dict(a.fields or {})
        for key, sub in (b.fields or {}).items():
            fields[key] = merge(fields[key], sub) if key in fields else sub
    return Shape(fields=fields, extra=_merge_optional(a.extra, b.extra),
                 items=_merge_optional(a.items, b.items), nullable=a.nullable or b.nullable)


def _merge_optional(a: Shape | None, b: Shape | None) -> Shape | None:
    return b if a is None else a if b is None else merge(a, b)


class DeclarationError(ValueError):
    """A .d.ts construct this reader does not know: read it before trusting the check."""


_TOKEN = re.compile(r"""\s+|/\*.*?\*/|//[^\n]*|(?P<tok>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?
                       |[A-Za-z_$][\w$]*|=>|[{}<>()\[\];:?|&,.=*])""", re.S | re.X)
_PRIMITIVES = {"string": SCALAR, "number": SCALAR, "boolean": SCALAR, "null": Shape(nullable=True), "true": SCALAR,
               "false": SCALAR, "undefined": SCALAR, "bigint": SCALAR, "any": ANY, "unknown": ANY,
               "object": Shape(fields={}, extra=ANY)}


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise DeclarationError(f"cannot read {text[position:position + 40]!r}")
        if match["tok"]:
            tokens.append(match["tok"])
        position = match.end()
    return tokens


class _File:
    """One .d.ts file: its imports, interfaces, type aliases and `export type {A as B}` names."""

    def __init__(self, path: Path, reader: _Reader) -> None:
        self.path, self.reader = path, reader
        self.tokens = _tokens(path.read_text(encoding="utf-8"))
        self.imports: dict[str, tuple[str, str]] = {}     # local name -> (specifier, its name there)
        self.declared: dict[str, int] = {}                # name -> token index of its `{` or `=`
        self.aliases: dict[str, str] = {}                 # exported name -> local name
        t = self.tokens
        i = 0
        while i < len(t):
            if t[i] == "import" and "{" in t[i + 1:i + 3] and t[i + 1] in ("{", "type"):
                names, i = self._names(t.index("{", i) + 1)
                if t[i] != "from":
                    raise DeclarationError(f"{path}: import without from")
                for local, there in names.items():
                    self.imports[local] = (t[i + 1][1:-1], there)
                i += 2
            elif t[i] == "export" and t[i + 1:i + 3] == ["type", "{"]:
                names, i = self._names(i + 3)
                self.aliases.update(names)
            elif t[i] == "interface":
                if t[i + 2] != "{":
                    raise DeclarationError(f"{path}: interface {t[i + 1]} {t[i + 2]} ...")
                self.declared[t[i + 1]] = i + 2
                i += 3
            elif t[i] == "type" and i + 2 < len(t) and t[i + 2] == "=":
                self.declared[t[i + 1]] = i + 2
                i += 3
            else:
                i += 1

    def _names(self, i: int) -> tuple[dict[str, str], int]:
        """`A, B as C }` from token i: {local/exported name: original name}, index after `}`."""
        t, names = self.tokens, {}
        while t[i] != "}":
            if t[i] == "type":
                i += 1
            original = local = t[i]
            if t[i + 1] == "as":
                local, i = t[i + 2], i + 2
            names[local] = original
            i += 1
            if t[i] == ",":
                i += 1
        return names, i + 1

    def shape(self, name: str) -> Shape:
        if name in self.declared:
            i = self.declared[name]
            parser = _Parser(self, i + 1 if self.tokens[i] == "=" else i)
            return parser.type_() if self.tokens[i] == "=" else parser.object_()
        if name in self.aliases and self.aliases[name] != name:
            return self.reader.named(self.path, self.aliases[name])
        if name in self.imports:
            specifier, there = self.imports[name]
            return self.reader.named(self.reader.locate(self.path, specifier), there)
        raise DeclarationError(f"{self.path}: no declaration of {name}")


class _Parser:
    """TypeScript types as the package's generator writes them (members, unions,
    intersections, Array<T>, literals, named types): anything else raises."""

    def __init__(self, file: _File, index: int) -> None:
        self.file, self.t, self.i = file, file.tokens, index

    def _take(self, expected: str | None = None) -> str:
        token = self.t[self.i]
        if expected is not None and token != expected:
            raise DeclarationError(f"{self.file.path}: expected {expected!r}, found {token!r} "
                                   f"(near {' '.join(self.t[max(0, self.i - 8):self.i + 4])})")
        self.i += 1
        return token

    def type_(self) -> Shape:
        if self.t[self.i] == "|":
            self.i += 1
        shape = self._intersection()
        while self.t[self.i] == "|":
            self.i += 1
            shape = merge(shape, self._intersection())
        return shape

    def _intersection(self) -> Shape:
        shape = self._postfix()
        while self.t[self.i] == "&":
            self.i += 1
            shape = merge(shape, self._postfix())
        return shape

    def _postfix(self) -> Shape:
        shape = self._primary()
        while self.t[self.i] == "[" and self.t[self.i + 1] == "]":
            self.i += 2
            shape = Shape(items=shape)
        return shape

    def _primary(self) -> Shape:
        token = self.t[self.i]
        if token == "{":
            return self.object_()
        if token == "(":
            self.i += 1
            shape = self.type_()
            self._take(")")
            return shape
        if token == "Array" or token == "ReadonlyArray":
            self.i += 1
            self._take("<")
            item = self.type_()
            self._take(">")
            return Shape(items=item)
        if token[0] in "\"'" or re.fullmatch(r"-?\d+(\.\d+)?", token):
            self.i += 1
            return SCALAR
        if token in _PRIMITIVES:
            self.i += 1
            return _PRIMITIVES[token]
        if re.fullmatch(r"[A-Za-z_$][\w$]*", token) and self.t[self.i + 1] not in ("<", "."):
            self.i += 1
            return self.file.reader.named(self.file.path, token)
        raise DeclarationError(f"{self.file.path}: cannot read a type at {' '.join(self.t[self.i:self.i + 6])}")

    def object_(self) -> Shape:
        self._take("{")
        fields: dict[str, Shape] = {}
        extra: Shape | None = None
        while self.t[self.i] != "}":
            if self.t[self.i] == "[":                              # [key: string]: T
                self.i += 1
                self._take()
                self._take(":")
                if self._take() not in ("string", "number"):
                    raise DeclarationError(f"{self.file.path}: index signature of another key type")
                self._take("]")
                self._take(":")
                value = self.type_()
                extra = value if extra is None else merge(extra, value)
            else:
                name = self._take()
                if name[0] in "\"'":
                    name = json.loads(name) if name[0] == '"' else name[1:-1]
                elif not re.fullmatch(r"[A-Za-z_$][\w$]*", name):
                    raise DeclarationError(f"{self.file.path}: member {name!r}")
                if self.t[self.i] == "?":
                    self.i += 1
                self._take(":")
                fields[name] = self.type_()
            if self.t[self.i] in (";", ","):
                self.i += 1
        self.i += 1
        if not fields and extra is None:
            extra = ANY            # `{}`: a free-form object (x-kubernetes-preserve-unknown-fields)
        return Shape(fields=fields, extra=extra)


@dataclass
class _Reader:
    node_modules: Path
    files: dict[Path, _File] = field(default_factory=dict)
    shapes: dict[tuple[Path, str], Shape | None] = field(default_factory=dict)

    def file(self, path: Path) -> _File:
        if path not in self.files:
            self.files[path] = _File(path, self)
        return self.files[path]

    def locate(self, importer: Path, specifier: str) -> Path:
        base = (importer.parent / specifier) if specifier.startswith(".") else self.node_modules / specifier
        stem = str(base)[:-3] if str(base).endswith(".js") else str(base)
        for candidate in (Path(stem + ".d.ts"), Path(stem) / "index.d.ts"):
            if candidate.exists():
                return candidate.resolve()
        raise DeclarationError(f"{importer}: cannot find the declarations of {specifier!r}")

    def named(self, path: Path, name: str) -> Shape:
        key = (path, name)
        if key in self.shapes:
            shape = self.shapes[key]
            return ANY if shape is None else shape    # None: a type that contains itself
        self.shapes[key] = None
        shape = self.file(path).shape(name)
        self.shapes[key] = shape
        return shape


@cache
def declared_shape(installed: Path, group: str, version: str, kind: str) -> Shape:
    """The shape of ``I<Kind>`` in the package's ``<group>/<version>/<Kind>.d.ts``."""
    node_modules = installed / "node_modules"
    path = node_modules / Path(*PACKAGE.split("/")) / group / version / f"{kind}.d.ts"
    if not re.fullmatch(r"[A-Za-z0-9]+", kind) or not path.exists():
        raise DeclarationError(f"{PACKAGE} declares no {group}/{version} {kind}")
    return _Reader(node_modules).named(path.resolve(), f"I{kind}")
