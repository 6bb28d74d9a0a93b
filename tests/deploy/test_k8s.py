"""deploy/k8s rendered and validated offline, and held to the files it must agree with.

Every kustomization (the base and each overlay) is rendered with kustomize; every object
it renders is validated (core kinds against Kubernetes' schemas, Strimzi resources with
the pinned npm package's validators and field names, prometheus-operator resources against
their vendored CRD schemas: tests/deploy/k8s.py, tests/deploy/strimzi.py).
Then what only this project knows: the generated files are in step with their sources
(KafkaTopics with schemas/asyncapi.yaml, the PrometheusRule with deploy/prometheus/rules,
the policies with streams/policies), the workers advertise their own stable DNS names,
every setting is one the worker reads with a value it accepts, every file setting points
into a mounted volume, every Secret is made by Strimzi or documented in docs/deploy.md.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from streams import contracts
from streams.engine.policy import load_policy_dir
from streams.security import Security
from streams.settings import NAMES, Settings
from tests.deploy import k8s, strimzi

REPO = k8s.REPO
Objects = list[dict[str, Any]]
#: Secrets nobody but an operator can make (never committed): docs/deploy.md tells how
EXTERNAL_SECRETS = {"checkpoint-dead-letter-key"}
#: the edge's pseudonymisation key: workers never need it (docs/operations.md), so a
#: worker that could read it would only widen who can re-identify a person reference
EDGE_ONLY = ("CHECKPOINT_PERSON_KEY", "CHECKPOINT_PERSON_KEY_FILE")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_generate", k8s.K8S / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    try:
        command, _ = k8s.find_kustomize()
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)
    return command


@pytest.fixture(scope="session")
def strimzi_models() -> Path:
    """The npm package that checks Strimzi resources, installed (``npm ci``) on first use."""
    try:
        return k8s.strimzi_models()
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def rendered(kustomize: list[str]) -> dict[str, Objects]:
    """kustomization (relative to deploy/k8s) -> its rendered objects."""
    return {str(path.relative_to(k8s.K8S)): k8s.render(kustomize, path) for path in k8s.kustomizations()}


def _one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _all(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def _worker(objects: Objects) -> tuple[dict[str, Any], dict[str, Any]]:
    statefulset = _one(objects, "StatefulSet", "checkpoint-streams-worker")
    containers = statefulset["spec"]["template"]["spec"]["containers"]
    return statefulset, next(c for c in containers if c["name"] == "worker")


def _environment(objects: Objects, container: dict[str, Any]) -> dict[str, str]:
    """The container's plain environment (ConfigMaps expanded; secret refs as `<secret:name/key>`)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = _one(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update({k: str(v) for k, v in (config_map.get("data") or {}).items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif ref := item.get("valueFrom", {}).get("secretKeyRef"):
            env[item["name"]] = f"<secret:{ref['name']}/{ref['key']}>"
        elif ref := item.get("valueFrom", {}).get("fieldRef"):
            env[item["name"]] = f"<field:{ref['fieldPath']}>"
    return env


def _mounts(statefulset: dict[str, Any], container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume (or volume claim template) mounted there."""
    spec = statefulset["spec"]
    volumes = {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}
    volumes.update({t["metadata"]["name"]: {"name": t["metadata"]["name"], "claim": t}
                    for t in spec.get("volumeClaimTemplates", [])})
    return {m["mountPath"]: volumes[m["volumeName"] if "volumeName" in m else m["name"]]
            for m in container.get("volumeMounts", [])}


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def kustomization_ids() -> list[str]:
    return [str(p.relative_to(k8s.K8S)) for p in k8s.kustomizations()]


# ------------------------------------------------------------------ render and validate
def test_there_is_a_base_and_an_overlay() -> None:
    assert kustomization_ids()[0] == "base"
    assert "overlays/production" in kustomization_ids()


@pytest.mark.parametrize("name", kustomization_ids())
def test_every_rendered_object_is_valid(rendered: dict[str, Objects], strimzi_models: Path, name: str) -> None:
    objects = rendered[name]
    problems = [str(p) for p in k8s.validate_all(objects)]
    assert not problems, "\n".join(problems)
    kinds = {o["kind"] for o in objects}
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "Kafka", "KafkaNodePool",
            "KafkaTopic", "KafkaUser", "PodMonitor", "PrometheusRule"} <= kinds
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "an object rendered twice"


def test_the_validators_refuse_broken_objects(rendered: dict[str, Objects], strimzi_models: Path) -> None:
    """No schema check is a rubber stamp: a misspelt field or a wrong type fails each."""
    objects = rendered["overlays/production"]
    statefulset, _ = _worker(objects)
    broken = copy.deepcopy(statefulset)
    broken["spec"]["replica"] = 2
    assert any("'replica' was unexpected" in p.message for p in k8s.validate(broken))
    broken = copy.deepcopy(statefulset)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [6066]
    assert k8s.validate(broken)
    monitor = copy.deepcopy(_one(objects, "PodMonitor"))
    monitor["spec"]["podMetricsEndpoints"][0]["prot"] = "web"
    assert any("'prot' was unexpected" in p.message for p in k8s.validate(monitor))
    rule = copy.deepcopy(_one(objects, "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["recrod"] = rule["spec"]["groups"][0]["rules"][0].pop("record")
    assert k8s.validate(rule)
    unknown = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert any("no schema" in p.message for p in k8s.validate(unknown))
    bad_name = copy.deepcopy(_all(objects, "KafkaTopic")[0])
    bad_name["metadata"]["name"] = "Checkpoint_Alerts"
    assert any("DNS-1123" in p.message for p in k8s.validate(bad_name))


def _strimzi_messages(obj: dict[str, Any]) -> list[str]:
    return [p.message for p in k8s.validate(obj)]


def test_strimzi_resources_are_held_to_the_package_schemas(rendered: dict[str, Objects],
                                                           strimzi_models: Path) -> None:
    """Each Strimzi kind, each way it can be wrong: an unknown field (the package's
    validators take those: tests/deploy/strimzi.py refuses them), a wrong type, a value
    outside an enum or a pattern, a missing required field, a null; all of them reported."""
    objects = rendered["overlays/production"]
    topic = _all(objects, "KafkaTopic")[0]
    broken = copy.deepcopy(topic)
    broken["spec"]["partitions"] = "four"
    assert _strimzi_messages(broken) == ["spec.partitions: must be integer"]
    broken = copy.deepcopy(topic)
    broken["spec"]["partition"] = broken["spec"].pop("partitions")
    assert _strimzi_messages(broken) == ["spec: Additional properties are not allowed ('partition' was unexpected)"]
    broken["metadata"]["label"] = broken["metadata"].pop("labels")     # ObjectMeta's fields too
    broken["spec"]["replicas"] = 0                                      # minimum 1
    broken["spec"]["config"]["anything.goes"] = "x"                     # free-form: taken
    assert sorted(_strimzi_messages(broken)) == [
        "metadata: Additional properties are not allowed ('label' was unexpected)",
        "spec.replicas: must be >= 1",
        "spec: Additional properties are not allowed ('partition' was unexpected)"]

    kafka = copy.deepcopy(_one(objects, "Kafka"))
    kafka["spec"]["kafka"]["listners"] = kafka["spec"]["kafka"].pop("listeners")
    messages = _strimzi_messages(kafka)
    assert "spec.kafka: Additional properties are not allowed ('listners' was unexpected)" in messages
    assert any(m.startswith("spec.kafka: must have required property") and "listeners" in m for m in messages)
    kafka = copy.deepcopy(_one(objects, "Kafka"))
    listener = kafka["spec"]["kafka"]["listeners"][0]
    listener.update(type="internall", name="Plain-Listener", tlss=True)
    kafka["spec"]["entityOperator"] = None
    messages = _strimzi_messages(kafka)
    assert any(m.startswith("spec.kafka.listeners.0.type: must be equal to one of the allowed values")
               for m in messages), messages
    assert any(m.startswith("spec.kafka.listeners.0.name: must match pattern") for m in messages), messages
    assert "spec.kafka.listeners.0: Additional properties are not allowed ('tlss' was unexpected)" in messages
    assert any(m.startswith("spec.entityOperator: is null") for m in messages), messages

    pool = copy.deepcopy(_all(objects, "KafkaNodePool")[0])
    pool["spec"]["roles"] = ["borker"]
    pool["spec"]["storage"]["volumes"][0]["sise"] = "10Gi"
    messages = _strimzi_messages(pool)
    assert any(m.startswith("spec.roles.0: must be equal to one of the allowed values") for m in messages)
    assert "spec.storage.volumes.0: Additional properties are not allowed ('sise' was unexpected)" in messages

    user = copy.deepcopy(_one(objects, "KafkaUser"))
    acl = user["spec"]["authorization"]["acls"][0]
    acl["operations"] = ["Everything"]
    acl["resource"]["patterntype"] = acl["resource"].pop("patternType")
    messages = _strimzi_messages(user)
    assert any(m.startswith("spec.authorization.acls.0.operations.0: must be equal to one of") for m in messages)
    assert ("spec.authorization.acls.0.resource: Additional properties are not allowed "
            "('patterntype' was unexpected)") in messages

    # a Strimzi kind or API version the package does not model is refused, never waved through
    assert any("has no model" in m for m in _strimzi_messages({**topic, "apiVersion": "kafka.strimzi.io/v9"}))
    # many objects, one Node.js call: each object keeps its own problems
    problems = k8s.validate_all([broken, topic, pool])
    assert {p.where for p in problems} == {k8s.describe(broken), k8s.describe(pool)}


def test_strimzi_field_names_read_from_the_package_declarations(strimzi_models: Path, tmp_path: Path) -> None:
    """The reader of the package's .d.ts files: what each construct the generator writes
    means for field names (an unreadable construct raises rather than passes)."""
    topic = strimzi.declared_shape(strimzi_models, "kafka.strimzi.io", "v1beta2", "KafkaTopic")
    assert topic.fields is not None and set(topic.fields) == {"apiVersion", "kind", "metadata", "spec", "status"}
    spec = topic.fields["spec"]
    assert spec.fields is not None and set(spec.fields) == {"topicName", "partitions", "replicas", "config"}
    assert spec.extra is None and spec.fields["config"].extra == strimzi.ANY
    node_modules = tmp_path / "node_modules"
    declared = node_modules / "@kubernetes-models" / "strimzi-kafka-operator" / "x.strimzi.io" / "v1"
    declared.mkdir(parents=True)
    (declared / "Meta.d.ts").write_text(
        "export interface IM { \"name\"?: string; }\nexport type { IM as IMeta };\n")
    (declared / "Thing.d.ts").write_text("""
        import type { IMeta } from "./Meta.js";
        /** a comment { with braces } */
        export interface IThing {
            "metadata"?: IMeta;
            "spec"?: {
                "free"?: {};
                "labels"?: { [key: string]: string; };
                "items"?: Array<{ "a": number; } & ({ "a": any; } | { "b": any; })>;
                "either"?: "x" | "y";
                "maybe"?: string | null;
                "any"?: any;
            };
        }
        export declare class Thing {}
    """)
    thing = {"metadata": {"name": "t", "nmae": "u"},
             "spec": {"free": {"x": {"y": 1}}, "labels": {"k": "v"}, "items": [{"a": 1, "b": 2, "c": 3}],
                      "either": None, "maybe": None, "any": {"z": 1}, "other": None}}
    shape = strimzi.declared_shape(tmp_path, "x.strimzi.io", "v1", "Thing")
    assert list(strimzi._check(thing, shape, "")) == [
        "metadata: Additional properties are not allowed ('nmae' was unexpected)",
        "spec.items.0: Additional properties are not allowed ('c' was unexpected)",
        "spec.either: is null (the API server drops it: leave the field out or give it a value)",
        "spec: Additional properties are not allowed ('other' was unexpected)"]
    (declared / "Odd.d.ts").write_text('export interface IOdd { "f"?: Map<string, number>; }\n')
    with pytest.raises(strimzi.DeclarationError):
        strimzi.declared_shape(tmp_path, "x.strimzi.io", "v1", "Odd")


def test_kustomize_refuses_a_broken_kustomization(kustomize: list[str], tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(k8s.RenderError, match=r"missing\.yaml"):
        k8s.render(kustomize, tmp_path)


def test_vendored_crd_schemas_name_their_source() -> None:
    readme = (k8s.CRDS / "README.md").read_text(encoding="utf-8")
    validators = k8s.crd_validators()
    assert {kind for _, kind in validators} >= {"PodMonitor", "PrometheusRule"}
    for path in sorted(k8s.CRDS.glob("*.json")):
        vendored = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert vendored["source"] and re.fullmatch(r"[0-9a-f]{64}", vendored["crd_sha256"])
        assert path.name in readme, f"{path.name} is not described in deploy/k8s/crds/README.md"
        group = vendored["apiVersion"].split("/")[0]
        assert group not in strimzi.GROUPS, f"{path.name}: Strimzi's schemas come from the npm package"


def test_strimzi_package_is_pinned_locked_and_described(strimzi_models: Path) -> None:
    """One exact version, every package locked with its integrity, the same version
    installed, and the README naming it and the Strimzi release its schemas are from."""
    version = strimzi.pinned_version()
    manifest = json.loads((strimzi.PACKAGE_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((strimzi.PACKAGE_DIR / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"], "run npm install in deploy/k8s/crds/strimzi"
    assert lock["packages"][f"node_modules/{strimzi.PACKAGE}"]["version"] == version
    assert all(entry.get("integrity") for name, entry in lock["packages"].items() if name)
    assert strimzi.installed_package(strimzi_models)["version"] == version
    readme = (k8s.CRDS / "README.md").read_text(encoding="utf-8")
    assert f"{strimzi.PACKAGE}@{version}" in readme
    releases = strimzi.generated_from(strimzi_models)
    assert releases, "the package no longer says which Strimzi CRD files it was made from"
    for release in releases:
        assert f"Strimzi {release}" in readme, f"deploy/k8s/crds/README.md: say what Strimzi {release} is"


# ---------------------------------------------------------------------- generated files
def test_generated_files_are_in_step_with_their_sources() -> None:
    """KafkaTopics = schemas/asyncapi.yaml, PrometheusRule = deploy/prometheus/rules,
    policies = streams/policies. Fix: `python deploy/k8s/generate.py`."""
    problems = generate.check()
    assert not problems, "\n".join([*problems, "run: python deploy/k8s/generate.py"])
    done = subprocess.run([sys.executable, str(k8s.K8S / "generate.py"), "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_contract_topic_is_a_kafka_topic_with_its_partitions_and_config(
        rendered: dict[str, Objects]) -> None:
    """Checked against streams.contracts (the code's own reading of the contract), not
    against the generator: the two readings must agree."""
    document = contracts.load_asyncapi()
    for name, objects in rendered.items():
        kafka = _one(objects, "Kafka")
        topics = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in _all(objects, "KafkaTopic")}
        assert len(topics) == len(document["channels"]), name
        for spec in contracts.topics().values():
            topic = topics[spec.name]
            assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
            assert topic["spec"]["partitions"] == spec.partitions, spec.name
            config = {k: str(v) for k, v in topic["spec"].get("config", {}).items()}
            assert config == spec.config, spec.name
            # replication is the cluster's (3), not the local broker's contract value (1)
            assert "replicas" not in topic["spec"]
            assert str(kafka["spec"]["kafka"]["config"]["default.replication.factor"]) == "3"


def test_the_generator_takes_every_channel_internal_ones_included(strimzi_models: Path) -> None:
    """Channels another change may add (Faust's changelogs and assignor topic): names with
    `_` and capitals, an app-id parameter, no partitions, compaction."""
    document = {"channels": {
        "persons": {"address": "checkpoint-streams-persons-changelog",
                    "bindings": {"kafka": {"partitions": 4, "topicConfiguration": {
                        "cleanup.policy": ["compact"], "retention.ms": -1}}},
                    "x-checkpoint-streams": {"internal": True, "direction": "internal"}},
        "assignor": {"address": "{appId}-__assignor-__leader",
                     "parameters": {"appId": {"description": "the app id"}},
                     "bindings": {"kafka": {"partitions": 1}}},
        "bare": {"address": "checkpoint.Other_Topic"},
    }}
    topics = {t["metadata"]["name"]: t for t in generate.kafka_topics(document)}
    assert set(topics) == {"checkpoint-streams-persons-changelog", "checkpoint-streams-assignor-leader",
                           "checkpoint.other-topic"}
    persons = topics["checkpoint-streams-persons-changelog"]
    assert persons["spec"] == {"partitions": 4, "config": {"cleanup.policy": "compact", "retention.ms": -1}}
    assert persons["metadata"]["labels"]["checkpoint-streams/internal"] == "true"
    assert topics["checkpoint-streams-assignor-leader"]["spec"] == {
        "topicName": "checkpoint-streams-__assignor-__leader", "partitions": 1}
    assert topics["checkpoint.other-topic"]["spec"] == {"topicName": "checkpoint.Other_Topic"}
    for topic in topics.values():
        assert not k8s.validate(topic)
    # a deployment namespace prefixes every topic, as CHECKPOINT_NAMESPACE does on the broker
    named = {t["spec"].get("topicName", t["metadata"]["name"])
             for t in generate.kafka_topics(document, namespace="staging")}
    assert named == {"staging.checkpoint-streams-persons-changelog",
                     "staging.checkpoint-streams-__assignor-__leader", "staging.checkpoint.Other_Topic"}
    with pytest.raises(generate.GenerateError, match="no default"):
        generate.kafka_topics({"channels": {"x": {"address": "{tenant}.topic"}}})
    with pytest.raises(generate.GenerateError, match="already"):
        generate.kafka_topics({"channels": {"a": {"address": "t"}, "b": {"address": "t"}}})


def test_prometheus_rule_carries_the_rule_files_unchanged(rendered: dict[str, Objects]) -> None:
    groups = []
    for path in sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.y*ml")):
        groups += yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    assert groups
    for objects in rendered.values():
        assert _one(objects, "PrometheusRule")["spec"]["groups"] == groups


def test_policies_config_map_is_the_bundled_policy_directory(rendered: dict[str, Objects],
                                                            tmp_path: Path) -> None:
    bundled = {p.name: p.read_text(encoding="utf-8")
               for p in (REPO / "streams" / "policies").glob("*.y*ml")}
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        policy_dir = _environment(objects, container)["CHECKPOINT_POLICY_DIR"]
        volume = _mounts(statefulset, container)[policy_dir]
        config_map = _one(objects, "ConfigMap", volume["configMap"]["name"])
        assert config_map["data"] == bundled, name
        assert sum(len(text.encode()) for text in bundled.values()) < 1024 * 1024, \
            "a ConfigMap holds at most 1 MiB: mount the policies another way"
        # what the worker does with it at start (streams.live: load_policy_dir)
        directory = tmp_path / name.replace("/", "-")
        directory.mkdir()
        for file, text in config_map["data"].items():
            (directory / file).write_text(text, encoding="utf-8")
        assert load_policy_dir(directory).policies


# ------------------------------------------------------------------------------ workers
def test_workers_advertise_their_own_stable_dns_name(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
        headless = _one(objects, "Service", statefulset["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None", name
        assert headless["spec"]["publishNotReadyAddresses"] is True
        assert _matches(headless["spec"]["selector"], pod_labels)
        env_order = [item["name"] for item in container["env"]]
        env = _environment(objects, container)
        assert env["POD_NAME"] == "<field:metadata.name>"
        assert env["POD_NAMESPACE"] == "<field:metadata.namespace>"
        assert env["CHECKPOINT_WEB_HOST"] == \
            f"$(POD_NAME).{headless['metadata']['name']}.$(POD_NAMESPACE).svc"
        # $(VAR) expands only variables defined before it
        assert env_order.index("POD_NAME") < env_order.index("CHECKPOINT_WEB_HOST")
        assert env_order.index("POD_NAMESPACE") < env_order.index("CHECKPOINT_WEB_HOST")
        assert env["CHECKPOINT_WEB_BIND"] == "0.0.0.0"  # listens on the pod's interfaces
        web = next(p for p in container["ports"] if p["name"] == "web")
        assert int(env["CHECKPOINT_WEB_PORT"]) == web["containerPort"]
        assert {p["targetPort"] for p in headless["spec"]["ports"]} <= {"web", web["containerPort"]}


def test_worker_settings_are_ones_the_worker_reads_with_values_it_accepts(
        rendered: dict[str, Objects], tmp_path: Path) -> None:
    known = set(NAMES)
    for path in (REPO / "streams").rglob("*.py"):
        known |= set(re.findall(r'"(CHECKPOINT_[A-Z0-9_]+)"', path.read_text(encoding="utf-8")))
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        env = _environment(objects, container)
        unknown = {k for k in env if k.startswith("CHECKPOINT_")} - known
        assert not unknown, f"{name}: settings no code reads: {sorted(unknown)}"
        plain = {k: v for k, v in env.items() if not v.startswith("<")}
        plain["CHECKPOINT_WEB_HOST"] = "checkpoint-streams-worker-0.checkpoint-streams-workers.ns.svc"
        settings = Settings.from_env(plain)          # raises on a value the worker refuses
        assert settings.store == "rocksdb://"
        assert settings.clock == "wall"
        assert int(plain["CHECKPOINT_PARTITIONS"]) == settings.partitions
        assert statefulset["spec"]["replicas"] <= settings.partitions, "workers beyond the partitions idle"
        # security: the files exist where the mounts put them; the values parse
        mounts = _mounts(statefulset, container)
        files = {k: v for k, v in plain.items() if k.endswith(("_FILE", "_CAFILE", "_CERTFILE", "_KEYFILE"))}
        local = dict(plain)
        for key, value in files.items():
            directory, file = value.rsplit("/", 1)
            volume = mounts.get(directory)
            assert volume, f"{name}: {key}={value} is not in a mounted volume"
            items = [i["path"] for i in (volume.get("secret") or volume.get("configMap") or {}).get("items", [])]
            assert not items or file in items, f"{name}: {key}: {file} is not one of the volume's items"
            (tmp_path / key).write_text("placeholder\n")
            local[key] = str(tmp_path / key)
        security = Security.from_env(local)
        assert security.protocol == "SASL_SSL" and security.mechanism == "SCRAM-SHA-512"


def test_worker_state_is_on_its_own_volume_claim(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        env = _environment(objects, container)
        assert env["CHECKPOINT_STORE"].startswith("rocksdb://"), name
        volume = _mounts(statefulset, container)[env["CHECKPOINT_DATA_DIR"]]
        claim = volume.get("claim")
        assert claim, f"{name}: the data directory is not on a volumeClaimTemplate"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert claim["spec"]["resources"]["requests"]["storage"]


def test_probes_readiness_on_ready_liveness_on_health(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        _, container = _worker(objects)
        ports = {p["name"] for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health", name
        assert container["startupProbe"]["httpGet"]["path"] == "/health", name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ports


def test_disruption_budget_resources_and_pod_security(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        pod = statefulset["spec"]["template"]
        budget = _one(objects, "PodDisruptionBudget", "checkpoint-streams-worker")
        assert _matches(budget["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]), name
        assert budget["spec"].get("maxUnavailable") == 1
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
        assert resources["limits"]["memory"], name
        assert "cpu" not in resources.get("limits", {}), "a CPU limit only throttles a one-thread worker"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["spec"]["automountServiceAccountToken"] is False


def _secret_names(statefulset: dict[str, Any], container: dict[str, Any]) -> Iterator[str]:
    for volume in statefulset["spec"]["template"]["spec"].get("volumes", []):
        if "secret" in volume:
            yield volume["secret"]["secretName"]
    for item in container.get("env", []):
        if ref := item.get("valueFrom", {}).get("secretKeyRef"):
            yield ref["name"]


def test_every_secret_is_made_by_strimzi_or_documented(rendered: dict[str, Objects]) -> None:
    deploy_doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        kafka = _one(objects, "Kafka")["metadata"]["name"]
        made = {u["metadata"]["name"] for u in _all(objects, "KafkaUser")} | {f"{kafka}-cluster-ca-cert"}
        for secret in _secret_names(statefulset, container):
            assert secret in made or secret in EXTERNAL_SECRETS, f"{name}: who makes Secret {secret}?"
            if secret in EXTERNAL_SECRETS:
                assert secret in deploy_doc, f"docs/deploy.md must say how to create {secret}"
        assert not [o for o in objects if o["kind"] == "Secret"], "no Secret is committed"
        env = _environment(objects, container)
        assert not set(EDGE_ONLY) & set(env), "workers never get the person key"
        for config in (v.get("configMap") for v in statefulset["spec"]["template"]["spec"]["volumes"]):
            if config:
                _one(objects, "ConfigMap", config["name"])


def test_workers_reach_the_kafka_cluster_as_their_kafka_user(rendered: dict[str, Objects]) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    for name, objects in rendered.items():
        _, container = _worker(objects)
        env = _environment(objects, container)
        kafka = _one(objects, "Kafka")
        assert kafka["spec"]["kafka"]["version"] == compose["services"]["kafka"]["image"].split(":")[1]
        listeners = {f"{kafka['metadata']['name']}-kafka-bootstrap:{li['port']}": li
                     for li in kafka["spec"]["kafka"]["listeners"]}
        listener = listeners[env["CHECKPOINT_BROKER"]]
        assert listener["tls"] is True and env["CHECKPOINT_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert listener["authentication"]["type"] == env["CHECKPOINT_SASL_MECHANISM"].lower()
        user = _one(objects, "KafkaUser", env["CHECKPOINT_SASL_USERNAME"])
        assert user["spec"]["authentication"]["type"] == listener["authentication"]["type"]
        # the ACLs cover the topics (every contract topic) and the app id (group, internal topics)
        prefix = Settings.from_env({"CHECKPOINT_NAMESPACE": env.get("CHECKPOINT_NAMESPACE", "")})
        allowed = {(acl["resource"]["type"], acl["resource"]["name"]) for acl in user["spec"]["authorization"]["acls"]
                   if acl["resource"].get("patternType") == "prefix" and "All" in acl["operations"]}
        assert ("group", prefix.app_id) in allowed and ("topic", prefix.app_id) in allowed
        for topic in contracts.topics():
            assert any(kind == "topic" and prefix.topic(topic).startswith(p) for kind, p in allowed), topic
        for resource in [*_all(objects, "KafkaNodePool"), *_all(objects, "KafkaTopic"), user]:
            assert resource["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert {r for pool in _all(objects, "KafkaNodePool") for r in pool["spec"]["roles"]} == \
            {"broker", "controller"}


def test_pod_monitor_scrapes_the_workers_as_the_rules_expect(rendered: dict[str, Objects]) -> None:
    for name, objects in rendered.items():
        statefulset, container = _worker(objects)
        monitor = _one(objects, "PodMonitor")
        assert _matches(monitor["spec"]["selector"]["matchLabels"],
                        statefulset["spec"]["template"]["metadata"]["labels"]), name
        endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        assert endpoint["port"] in {p["name"] for p in container["ports"]}
        assert endpoint["path"] == "/metrics"
        jobs = {r.get("replacement") for r in endpoint["relabelings"] if r.get("targetLabel") == "job"}
        rules = yaml.safe_dump(_one(objects, "PrometheusRule")["spec"])
        assert jobs == set(re.findall(r'job="([^"]+)"', rules)) == {"checkpoint-worker"}


def test_production_overlay_pins_the_image_and_sizes_up(rendered: dict[str, Objects]) -> None:
    base, _ = _worker(rendered["base"])
    production, container = _worker(rendered["overlays/production"])
    assert container["image"].rsplit(":", 1)[1] not in ("latest", ""), "production pins a tag"
    assert production["spec"]["replicas"] >= base["spec"]["replicas"]
    assert all(o["metadata"].get("namespace") == "checkpoint-streams"
               for o in rendered["overlays/production"] if o["kind"] != "Namespace")
    env = _environment(rendered["overlays/production"], container)
    assert env["CHECKPOINT_DEAD_LETTER_ORIGINAL"] == "encrypt"
    assert env["CHECKPOINT_DEAD_LETTER_KEY"] == "<secret:checkpoint-dead-letter-key/key>"
