"""Turns rendered Kubernetes manifests into what `podman kube play` (4.3)
can run on one machine, changing as little as it must and saying what.

    python3 deploy/podman/kube_play.py RENDERED.yaml OUT.yaml PREFIX GATEWAY_PORT

Prints one line per change: `kept KIND NAME`, `ignored KIND NAME (why)`,
`changed ... (why)`. PREFIX names the pods so that several checks can
share the machine; the gateway's gRPC port is published on 127.0.0.1 at
GATEWAY_PORT. With KUBE_PLAY_API_KEY set, the API keys Secret holds that
one key (tenant "check"), as an operator's overlay would.
"""

import base64
import hashlib
import os
import sys

import yaml

# Kinds podman plays, and those it has no notion of on one machine.
PLAYED = {"Deployment", "Secret", "ConfigMap", "PersistentVolumeClaim"}
IGNORED = {
    "Service": "no Services: pods reach each other by pod name on the podman network (renamed below)",
    "HorizontalPodAutoscaler": "no autoscaling",
    "PodDisruptionBudget": "no evictions",
    "NetworkPolicy": "no network policies",
}
IMAGES = {
    "inpaint:dev": "localhost/inpaint:dev",
    "redis:7.0": "localhost/inpaint-redis:dev",
}


def say(line):
    print(line)


def grpc_probe_as_exec(probe, name):
    """Podman 4.3 crashes on gRPC probes: the same check as an exec probe,
    with the image's own health client."""
    port = probe.pop("grpc")["port"]
    probe["exec"] = {"command": ["inpaint", "health", f"http://127.0.0.1:{port}"]}
    say(f"changed {name}: gRPC probe -> exec `inpaint health` (podman 4.3 crashes on gRPC probes)")


def rename_hosts(value, services):
    """Service names in URLs -> the pods that serve them."""
    for service, pod in services.items():
        value = value.replace(f"://{service}:", f"://{pod}:")
    return value


def main():
    rendered, out, prefix, gateway_port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    # A Service reaches the pods its selector matches: on podman, the pod
    # of the Deployment (or StatefulSet) with that name label, which podman
    # names NAME-pod-0 and its network's DNS resolves.
    workloads = {
        d["metadata"]["name"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    services = {
        d["metadata"]["name"]: f"{prefix}-{d['spec']['selector']['app.kubernetes.io/name']}-pod-0"
        for d in docs
        if d["kind"] == "Service"
        and d["spec"].get("selector", {}).get("app.kubernetes.io/name") in workloads
    }
    played = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in IGNORED:
            say(f"ignored {kind} {name} ({IGNORED[kind]})")
            continue
        if kind == "StatefulSet":
            # Podman 4.3 plays no StatefulSets: a Deployment with the
            # claim template as a claim of its own (a podman volume).
            security = d["spec"]["template"]["spec"].get("securityContext", {})
            for template in d["spec"].pop("volumeClaimTemplates", []):
                claim = template["metadata"]["name"]
                # Podman ignores fsGroup: the volume is made the pod
                # user's instead.
                owner = {
                    f"volume.podman.io/{k}": str(security[field])
                    for k, field in (("uid", "runAsUser"), ("gid", "fsGroup"))
                    if field in security
                }
                d["spec"]["template"]["spec"].setdefault("volumes", []).append(
                    {"name": claim, "persistentVolumeClaim": {"claimName": f"{prefix}-{name}-{claim}"}}
                )
                played.append({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"{prefix}-{name}-{claim}", "annotations": owner},
                    "spec": template["spec"],
                })
            if owner:
                say(f"changed StatefulSet {name}: fsGroup -> the volume's owner (podman ignores fsGroup)")
            d["spec"].pop("serviceName", None)
            d["kind"], d["apiVersion"] = "Deployment", "apps/v1"
            say(f"changed StatefulSet {name} -> Deployment with a PersistentVolumeClaim (podman 4.3 plays no StatefulSets)")
            kind = "Deployment"
        if kind == "Secret":
            # Podman 4.3 crashes mounting a Secret into a Deployment's pod
            # (no secrets manager on that path): the same files from a
            # ConfigMap, which it mounts.
            data = dict(d.get("stringData", {}))
            for key, value in d.get("data", {}).items():
                data[key] = base64.b64decode(value).decode()
            api_key = os.environ.get("KUBE_PLAY_API_KEY")
            if name == "inpaint-api-keys" and api_key:
                digest = hashlib.sha256(api_key.encode()).hexdigest()
                data["keys.toml"] = f'[[keys]]\ntenant = "check"\nsha256 = "{digest}"\n'
                say(f"changed Secret {name}: one key for the check (tenant check)")
            # Prefixed as the pods are: podman keeps it as a volume of
            # that name.
            metadata = {**d["metadata"], "name": f"{prefix}-{name}"}
            d = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
            say(f"changed Secret {name} -> ConfigMap (podman 4.3 crashes mounting Secrets in Deployments)")
            kind = "ConfigMap"
        if kind not in PLAYED:
            say(f"ignored {kind} {name} (podman does not play it)")
            continue
        if kind == "Deployment":
            replicas = d["spec"].get("replicas", 1)
            if replicas != 1:
                d["spec"]["replicas"] = 1
                say(f"changed Deployment {name}: replicas {replicas} -> 1 (one pod per Deployment on one machine)")
            d["metadata"]["name"] = f"{prefix}-{name}"
            pod = d["spec"]["template"]["spec"]
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    secret = volume.pop("secret")
                    volume["configMap"] = {"name": f"{prefix}-{secret.pop('secretName')}", **secret}
            for c in pod["containers"]:
                # Podman 4.3 publishes every containerPort on the host (so
                # every metrics port 9100 would collide): only the
                # gateway's gRPC port is, at GATEWAY_PORT on loopback.
                ports = c.pop("ports", [])
                for port in ports:
                    if name == "inpaint-gateway" and port.get("name") == "grpc":
                        c["ports"] = [{**port, "hostPort": gateway_port, "hostIP": "127.0.0.1"}]
                if ports:
                    published = c.get("ports", [{}])[0].get("hostPort", "none")
                    say(f"changed {name}/{c['name']} ports: published only the gateway's gRPC port ({published}) (podman 4.3 publishes every containerPort)")
                if c.get("image") in IMAGES:
                    c["image"] = IMAGES[c["image"]]
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    if "grpc" in c.get(probe, {}):
                        grpc_probe_as_exec(c[probe], f"{name}/{c['name']} {probe}")
                for env in c.get("env", []):
                    if "value" in env:
                        renamed = rename_hosts(env["value"], services)
                        if renamed != env["value"]:
                            say(f"changed {name}/{c['name']} {env['name']}: {env['value']} -> {renamed}")
                            env["value"] = renamed
        say(f"kept {kind} {name}")
        played.append(d)
    with open(out, "w") as f:
        yaml.safe_dump_all(played, f, sort_keys=False)


if __name__ == "__main__":
    main()
