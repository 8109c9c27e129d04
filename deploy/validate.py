"""Checks of deploy/ that need no Docker and no cluster (run by validate.sh).

- compose.yaml against the Compose specification's JSON schema;
- the CloudNativePG Cluster against the fields this project relies on (the
  Kubernetes schemas do not know the custom resource);
- cross-checks between the files and the code: every CASEGUARD_* variable
  names a key src/config.rs knows (an unknown key stops caseguard), probes
  use /readyz and /healthz, the PodDisruptionBudget, Service and
  NetworkPolicy select the Deployment's pods, containers run as non-root
  on a read-only root filesystem with a writable data_dir.
"""

import argparse
import json
import pathlib
import re
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def known_keys():
    text = (ROOT / "src/config.rs").read_text()
    block = re.search(r"const KNOWN_KEYS: &\[&str\] = &\[(.*?)\];", text, re.S)
    keys = set(re.findall(r'"([a-z_]+)"', block.group(1))) if block else set()
    check(keys, "could not read KNOWN_KEYS from src/config.rs")
    return keys


def check_env(names, where, keys):
    for name in names:
        if name.startswith("CASEGUARD_"):
            key = name[len("CASEGUARD_"):].lower()
            check(key in keys or key == "config", f"{where}: {name} is not a caseguard setting")


def load_all(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose(schema_path, keys):
    path = ROOT / "deploy/compose/compose.yaml"
    document = yaml.safe_load(path.read_text())
    schema = json.loads(pathlib.Path(schema_path).read_text())
    validator = jsonschema.Draft201909Validator(schema)
    for error in validator.iter_errors(document):
        where = "/".join(str(p) for p in error.absolute_path)
        problems.append(f"compose.yaml: {where}: {error.message}")
    services = document.get("services", {})
    apps = [name for name, s in services.items() if s.get("image") == "caseguard:local"]
    check(len(apps) >= 2, "compose.yaml: two caseguard replicas expected")
    for name in apps:
        service = services[name]
        check(service.get("read_only") is True, f"compose.yaml: {name} must have a read-only root")
        check("ALL" in service.get("cap_drop", []), f"compose.yaml: {name} must drop capabilities")
        env = service.get("environment", {})
        check_env(env, f"compose.yaml {name}", keys)
        check("CASEGUARD_TRUSTED_PROXIES" in env, f"compose.yaml: {name} needs trusted_proxies")
        check(
            str(env.get("CASEGUARD_DATABASE_URL", "")).startswith("postgres://"),
            f"compose.yaml: {name} must use PostgreSQL (several replicas)",
        )
    for needed in ("db", "proxy", "mail"):
        check(needed in services, f"compose.yaml: service {needed} missing")
    proxy_ip = (
        services.get("proxy", {}).get("networks", {}).get("frontend", {}) or {}
    ).get("ipv4_address")
    for name in apps:
        trusted = services[name].get("environment", {}).get("CASEGUARD_TRUSTED_PROXIES")
        check(trusted == proxy_ip, f"compose.yaml: {name} must trust exactly the proxy's address")
    print(f"ok   compose.yaml ({len(services)} services, {len(apps)} caseguard replicas)")


CNPG_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "postgresql.cnpg.io/v1"},
        "kind": {"const": "Cluster"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["instances", "postgresql", "storage", "bootstrap"],
            "additionalProperties": False,
            "properties": {
                "instances": {"type": "integer", "minimum": 2},
                "imageName": {"type": "string"},
                "primaryUpdateStrategy": {"enum": ["supervised", "unsupervised"]},
                "postgresql": {
                    "type": "object",
                    "required": ["synchronous"],
                    "additionalProperties": False,
                    "properties": {
                        "synchronous": {
                            "type": "object",
                            "required": ["method", "number"],
                            "additionalProperties": False,
                            "properties": {
                                "method": {"enum": ["any", "first"]},
                                "number": {"type": "integer", "minimum": 1},
                                "dataDurability": {"enum": ["required", "preferred"]},
                            },
                        },
                        "parameters": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
                "bootstrap": {
                    "type": "object",
                    "properties": {
                        "initdb": {
                            "type": "object",
                            "required": ["database", "owner"],
                            "properties": {
                                "database": {"type": "string"},
                                "owner": {"type": "string"},
                            },
                        }
                    },
                },
                "storage": {"type": "object", "required": ["size"]},
                "walStorage": {"type": "object", "required": ["size"]},
                "affinity": {
                    "type": "object",
                    "properties": {
                        "enablePodAntiAffinity": {"type": "boolean"},
                        "topologyKey": {"type": "string"},
                    },
                },
                "monitoring": {"type": "object"},
            },
        },
    },
}


def cloudnativepg():
    path = ROOT / "deploy/kubernetes/cloudnativepg/cluster.yaml"
    for document in load_all(path):
        for error in jsonschema.Draft202012Validator(CNPG_SCHEMA).iter_errors(document):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"cloudnativepg/cluster.yaml: {where}: {error.message}")
        spec = document.get("spec", {})
        sync = spec.get("postgresql", {}).get("synchronous", {})
        instances, number = spec.get("instances"), sync.get("number")
        check(
            isinstance(instances, int) and isinstance(number, int) and instances > number,
            "cloudnativepg: needs more instances than synchronous standbys",
        )
    print("ok   cloudnativepg/cluster.yaml (fields checked: see CNPG_SCHEMA)")
    return document.get("metadata", {}).get("name")


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def kubernetes(keys, cluster_name):
    documents = []
    for path in sorted((ROOT / "deploy/kubernetes").glob("*.yaml")):
        documents += [(path.name, d) for d in load_all(path)]
    by_kind = {}
    for name, doc in documents:
        by_kind.setdefault(doc["kind"], []).append((name, doc))
    deployments = by_kind.get("Deployment", [])
    check(len(deployments) == 1, "kubernetes: one Deployment expected")
    _, deployment = deployments[0]
    spec = deployment["spec"]
    check(spec.get("replicas", 1) >= 2, "kubernetes: the Deployment needs two or more replicas")
    pod = spec["template"]
    labels = pod["metadata"]["labels"]
    check(matches(spec["selector"]["matchLabels"], labels), "Deployment selector misses its pods")
    pod_spec = pod["spec"]
    check(pod_spec.get("securityContext", {}).get("runAsNonRoot") is True, "pods must run as non-root")
    configmaps = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    for container in pod_spec["containers"]:
        security = container.get("securityContext", {})
        check(security.get("readOnlyRootFilesystem") is True, "containers need a read-only root")
        check(security.get("allowPrivilegeEscalation") is False, "no privilege escalation")
        check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness on /readyz")
        check(container["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness on /healthz")
        names = [e["name"] for e in container.get("env", [])]
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            check(ref in configmaps, f"envFrom names a missing ConfigMap {ref}")
            names += list(configmaps.get(ref, {}).get("data", {}))
        check_env(names, "Deployment", keys)
        env = {e["name"]: e for e in container.get("env", [])}
        keyring = configmaps.get("caseguard", {}).get("data", {}).get("CASEGUARD_KEYRING", "")
        check(keyring.startswith("env:"), "the keyring must come from a Secret (env:NAME)")
        variable = keyring[len("env:"):]
        check(
            "secretKeyRef" in env.get(variable, {}).get("valueFrom", {}),
            f"{variable} must come from a Secret",
        )
        database = env.get("CASEGUARD_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(
            database.get("name") == f"{cluster_name}-app",
            "the database URL must come from the CloudNativePG app secret",
        )
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        data_dir = configmaps.get("caseguard", {}).get("data", {}).get("CASEGUARD_DATA_DIR")
        check(
            any(data_dir == m or (data_dir or "").startswith(m.rstrip("/") + "/") for m in mounts),
            "data_dir must be in a mounted (writable) volume",
        )
    for kind in ("PodDisruptionBudget", "Service"):
        for name, doc in by_kind.get(kind, []):
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            if doc["metadata"]["name"] == "caseguard":
                check(matches(selector, labels), f"{kind} {name} does not select the app's pods")
    policies = [d for _, d in by_kind.get("NetworkPolicy", [])]
    app_policy = [p for p in policies if matches(p["spec"]["podSelector"]["matchLabels"], labels)]
    check(len(app_policy) == 1, "one NetworkPolicy must select the app's pods")
    for policy in app_policy:
        check(set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "app policy: both directions")
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
        check(egress_ports <= {5432, 587, 465, 25, 53}, f"app egress beyond PostgreSQL, SMTP, DNS: {egress_ports}")
        ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])}
        check(ingress_ports == {8080}, "app ingress: only the HTTP port")
    print(f"ok   kubernetes ({len(documents)} objects cross-checked)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compose-schema", required=True)
    args = parser.parse_args()
    keys = known_keys()
    compose(args.compose_schema, keys)
    cluster = cloudnativepg()
    kubernetes(keys, cluster)
    for problem in problems:
        print(f"problem: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
