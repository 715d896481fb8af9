"""What the chart tests share: the chart rendered offline by Helm's own engine (helm-python-sdk
embeds Helm v4), the scenarios it is rendered for, and readers of the rendered pod.

values → helm render (offline) → YAML documents → objects → assertions
"""

from __future__ import annotations

import copy
import functools
import pathlib
import re
from typing import Any

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "chart"
RELEASE = "edge"
NAMESPACE = "tunnel"
SECRET = "tunnel-credentials"
# The Kubernetes version the binary is built against (k8s-openapi's `v1_32` feature).
KUBE_VERSION = "1.32"

# Kinds that come from CRDs: not in kubernetes-validate's schemas, checked by hand.
CRD_KINDS = {
    ("gateway.networking.k8s.io/v1", "GatewayClass"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}

REQUIRED = {"tunnel": {"credentialsSecret": SECRET}}

# Every optional part turned on.
EVERYTHING = {
    "gatewayClass": {"create": True, "name": "cloudflare-tunnel"},
    "gateway": {
        "create": True,
        "name": "public",
        "listeners": [
            {"name": "apps", "protocol": "HTTP", "port": 80, "hostname": "*.apps.example.com",
             "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "api", "protocol": "HTTPS", "port": 443, "hostname": "api.example.com",
             "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
                 "matchLabels": {"tunnel": "public"}}}}},
        ],
    },
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "baseConfig": {
        "protocol": "http2",
        "originRequest": {"connectTimeout": "10s"},
        "ingress": [
            {"hostname": "ssh.example.net", "service": "ssh://sshd.ops.svc.cluster.local:22"},
            {"service": "http_status:404"},
        ],
    },
    "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
    "replicas": 3,
    "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
    "extraArgs": ["--lease-duration", "30s"],
    "logLevel": "cloudflared_routes=debug",
    "logFormat": "json",
    "cloudflared": {
        "extraArgs": ["--protocol", "http2"],
        "extraEnv": [{"name": "TUNNEL_LOGLEVEL", "value": "debug"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    },
    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccount": {"annotations": {"example.com/role": "tunnel"}},
    "podAnnotations": {"example.com/team": "edge"},
    "podLabels": {"tier": "edge"},
    "priorityClassName": "tunnel-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": {
                                                "app.kubernetes.io/instance": RELEASE}}}}]}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "ScheduleAnyway",
                                   "labelSelector": {"matchLabels": {
                                       "app.kubernetes.io/instance": RELEASE}}}],
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` deep-merged into a copy of `base` (maps merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def values(*overrides: dict[str, Any]) -> dict[str, Any]:
    """The required value plus `overrides`, in order."""
    out = copy.deepcopy(REQUIRED)
    for override in overrides:
        out = merge(out, override)
    return out


SIGNAL = {"reload": {"mode": "signal"}}

SCENARIOS: dict[str, dict[str, Any]] = {
    "supervise": values(),
    "signal": values(SIGNAL),
    "supervise-everything": values(EVERYTHING),
    "signal-everything": values(EVERYTHING, SIGNAL),
}


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render_values(vals: dict[str, Any], *, name: str = RELEASE,
                  namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every object the chart renders for `vals` (release `name` in `namespace`), in template
    order."""
    manifests = chart().render(values=vals, name=name, namespace=namespace)
    objects = []
    for template in sorted(manifests):
        if not template.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(manifests[template]):
            if document is not None:
                objects.append(document)
    return objects


def render_notes(vals: dict[str, Any]) -> str:
    """NOTES.txt as `helm install` prints it for `vals`."""
    manifests = chart().render(values=vals, name=RELEASE, namespace=NAMESPACE)
    (notes,) = [text for template, text in manifests.items() if template.endswith("/NOTES.txt")]
    return notes


@functools.cache
def _render_scenario(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(render_values(SCENARIOS[name]))


def render(name: str) -> list[dict[str, Any]]:
    """The objects of a named scenario (rendered once, copied for each caller)."""
    return copy.deepcopy(list(_render_scenario(name)))


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment")["spec"]["template"]["spec"]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in all_containers(spec) if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}, got {len(found)}"
    return found[0]


def routes_container(spec: dict[str, Any]) -> dict[str, Any]:
    return container(spec, "cloudflared-routes")


def split_argv(args: list[str]) -> tuple[list[str], list[str]]:
    """`cloudflared-routes run` arguments, and the supervised cloudflared argv after `--`."""
    if "--" in args:
        at = args.index("--")
        return args[:at], args[at + 1:]
    return args, []


def flag(args: list[str], name: str) -> list[str]:
    """Every value given to `name` (as `--name value`) in `args`."""
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]


def single_flag(args: list[str], name: str) -> str:
    found = flag(args, name)
    assert len(found) == 1, f"{name}: expected one value in {args}, got {found}"
    return found[0]


def seconds(duration: str) -> float:
    """A duration as cloudflared-routes reads it (`35s`, `2m`, `500ms`, `15`)."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)?", duration)
    assert m, f"not a duration: {duration}"
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


def env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def volumes(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in spec.get("volumes", [])}


def mount_of(c: dict[str, Any], path: str) -> dict[str, Any]:
    """The mount under which `path` lives in container `c` (the longest matching mount path)."""
    best = None
    for m in c.get("volumeMounts", []):
        root = m["mountPath"].rstrip("/") + "/"
        if path.startswith(root) and (best is None or len(m["mountPath"]) > len(best["mountPath"])):
            best = m
    assert best is not None, f"{path} is on no volume of container {c['name']}"
    return best


def port_number(c: dict[str, Any], port: int | str) -> int:
    """A probe's port, resolved through the container's named ports."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
    assert port in named, f"port {port!r} is not a named port of container {c['name']}"
    return named[port]


def effective_security(spec: dict[str, Any], c: dict[str, Any], key: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    return c.get("securityContext", {}).get(key, spec.get("securityContext", {}).get(key))


def dockerfile_text() -> str:
    return (ROOT / "Dockerfile").read_text()


def cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    package = text[text.index("[package]"):]
    m = re.search(r'^version\s*=\s*"([^"]+)"', package, re.M)
    assert m, "no version in Cargo.toml [package]"
    return m.group(1)
