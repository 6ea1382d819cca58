#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests: every resource validates
against the Kubernetes schema (kubernetes-validate, strict), every
kustomization's resources exist, and the gateway's stage URLs name Services
that the base defines."""
import sys
from pathlib import Path

import kubernetes_validate
import yaml

K8S = Path(__file__).resolve().parent / "k8s"
VERSION = "1.33"


def main() -> int:
    failures = 0
    services = set()
    urls = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if docs and isinstance(docs[0], list):
            # A JSON patch: its target is validated through the overlay.
            print(f"ok   {path.relative_to(K8S)}: patch")
            continue
        for doc in docs:
            if doc.get("kind") == "Kustomization":
                for res in doc.get("resources", []) + [p["path"] for p in doc.get("patches", []) if "path" in p]:
                    if not (path.parent / res).exists():
                        print(f"FAIL {path}: {res} does not exist")
                        failures += 1
                continue
            try:
                kubernetes_validate.validate(doc, VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                print(f"FAIL {path}: {doc['kind']}/{doc['metadata']['name']}: {err.message}")
                failures += 1
                continue
            if doc["kind"] == "Service":
                services.add(doc["metadata"]["name"])
            if doc["kind"] == "Deployment":
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    urls += [e["value"] for e in c.get("env", []) if e["name"].endswith("_URL")]
            print(f"ok   {path.relative_to(K8S)}: {doc['kind']}/{doc['metadata']['name']}")
    for url in urls:
        host = url.split("//", 1)[1].split(":", 1)[0]
        if host not in services:
            print(f"FAIL gateway URL {url} names no Service")
            failures += 1
    print(f"{len(urls)} stage URLs checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
