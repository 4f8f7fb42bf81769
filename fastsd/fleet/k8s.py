"""Plain Kubernetes manifests: the volume as a PVC, one Job per session, the web UI as Deployment + Service."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from fastsd.errors import bad_input
from fastsd.layout import CONTAINER_ROOT, DataRoot

APP_LABEL = "app.kubernetes.io/part-of"
CONTAINER = "fastsd"  # the container name the Jobs' pod failure policy refers to
WEBUI_PORT = 7860
SECRET_KEYS = ("HF_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FASTSD_WEB_PASSWORD")
PLAIN_ENVS = ("FASTSD_SYNC_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
ACCESS_MODES = ("ReadWriteMany", "ReadWriteOnce")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ClusterRequest:
    """What to render: sessions and their run options, the volume, the web UI, the images."""

    sessions: tuple[str, ...]
    run_argv: tuple[str, ...]
    train_image: str
    webui_image: str
    webui_model: str | None = None
    namespace: str = "default"
    storage: str = "200Gi"
    storage_class: str | None = None
    access_mode: str = "ReadWriteMany"
    gpus: int = 1
    max_restarts: int = 3
    secret: str = "fastsd-secrets"
    env: dict = field(default_factory=dict)


def k8s_name(*parts: str) -> str:
    """A DNS-1123 name from `parts` (lower case, '-' for anything else), at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:63].rstrip("-")
    if not _DNS_LABEL.fullmatch(name):
        raise bad_input(f"{'-'.join(parts)!r} makes no Kubernetes name", "use letters and digits in session names")
    return name


def check_request(request: ClusterRequest) -> None:
    """Every option checked before rendering, each problem naming the option."""
    problems = []
    if not _QUANTITY.fullmatch(request.storage):
        problems.append(f"--storage {request.storage!r} is not a quantity (e.g. 200Gi)")
    if request.access_mode not in ACCESS_MODES:
        problems.append(f"--access-mode {request.access_mode!r}: one of {', '.join(ACCESS_MODES)}")
    pods = len(request.sessions) + (1 if request.webui_model else 0)
    if request.access_mode == "ReadWriteOnce" and pods > 1:
        problems.append(f"--access-mode ReadWriteOnce with {pods} pods: a ReadWriteOnce volume attaches to one "
                        "node, so the pods would wait for each other or never start on other nodes; use "
                        "ReadWriteMany (a storage class that offers it) or one session at a time")
    if not _DNS_LABEL.fullmatch(request.namespace):
        problems.append(f"--namespace {request.namespace!r} is not a DNS label")
    if request.gpus < 0 or request.max_restarts < 0:
        problems.append("--gpus and --max-restarts must be >= 0")
    if not request.sessions and not request.webui_model:
        problems.append("nothing to render: give sessions, --webui MODEL, or both")
    names = [k8s_name("fastsd", s) for s in request.sessions]
    if len(set(names)) != len(names):
        problems.append("two sessions make the same Kubernetes name; rename one")
    if problems:
        raise bad_input("cannot render the manifests:\n  - " + "\n  - ".join(problems), "see: fastsd k8s render --help")


def _labels(component: str, session: str | None = None) -> dict:
    labels = {APP_LABEL: "fastsd", "app.kubernetes.io/component": component}
    if session:
        labels["fastsd.session"] = session
    return labels


def _env(request: ClusterRequest, extra: dict | None = None) -> list[dict]:
    env = [{"name": "FASTSD_DATA", "value": str(CONTAINER_ROOT)}, {"name": "FASTSD_IN_CONTAINER", "value": "1"}]
    env += [{"name": k, "value": str(v)} for k, v in {**request.env, **(extra or {})}.items()]
    # Secrets by reference: the manifests never hold a value; a key the Secret lacks is simply unset.
    env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": request.secret, "key": key, "optional": True}}}
            for key in SECRET_KEYS]
    return env


def _pod_spec(request: ClusterRequest, container: dict, restart: str) -> dict:
    return {
        "restartPolicy": restart,
        # The images run as uid 1000; fsGroup makes the volume writable by it.
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True},
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "fastsd-data"}},
                    {"name": "shm", "emptyDir": {"medium": "Memory"}}],  # the data loaders' shared memory
    }


def _container(name: str, image: str, command: list[str], request: ClusterRequest, gpus: int, extra=None) -> dict:
    container = {"name": name, "image": image, "command": command, "env": _env(request, extra),
                 "volumeMounts": [{"name": "data", "mountPath": str(CONTAINER_ROOT)},
                                  {"name": "shm", "mountPath": "/dev/shm"}]}
    if gpus:
        # A string: the Kubernetes Python client refuses integer quantities.
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return container


def pvc(request: ClusterRequest) -> dict:
    """The data volume as a PersistentVolumeClaim."""
    spec = {"accessModes": [request.access_mode], "resources": {"requests": {"storage": request.storage}}}
    if request.storage_class:
        spec["storageClassName"] = request.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "fastsd-data", "namespace": request.namespace, "labels": _labels("data")},
            "spec": spec}


def job(request: ClusterRequest, session: str) -> dict:
    """One session's `fastsd run` as a Job whose preemptions do not count as failures."""
    photos = DataRoot(CONTAINER_ROOT).inputs(session)
    command = ["fastsd", "run", session, "--photos", str(photos), *request.run_argv, "--runtime", "local"]
    container = _container(CONTAINER, request.train_image, command, request, request.gpus)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": k8s_name("fastsd", session), "namespace": request.namespace,
                     "labels": _labels("train", session)},
        "spec": {
            "backoffLimit": request.max_restarts,
            "podFailurePolicy": {"rules": [
                # A node drained or a spot node taken away: retry without using up backoffLimit.
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                # Exit 2 is a bad input: no retry can fix it.
                {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [2]}},
            ]},
            "template": {"metadata": {"labels": _labels("train", session)},
                         "spec": _pod_spec(request, container, "Never")},
        },
    }


def webui(request: ClusterRequest) -> list[dict]:
    """The web UI as a Deployment and its Service (ClusterIP: expose it with your ingress)."""
    labels = _labels("webui")
    extra = {"FASTSD_WEBUI_MODEL": request.webui_model, "FASTSD_WEBUI_SERVER_NAME": "0.0.0.0"}
    container = _container("webui", request.webui_image, ["fastsd", "webui", "--in-process", "--port",
                                                           str(WEBUI_PORT)], request, min(request.gpus, 1), extra)
    container["ports"] = [{"name": "http", "containerPort": WEBUI_PORT}]
    container["readinessProbe"] = {"tcpSocket": {"port": WEBUI_PORT}, "periodSeconds": 10, "failureThreshold": 60}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "fastsd-webui", "namespace": request.namespace, "labels": labels},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"},  # one UI writing the volume at a time
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": _pod_spec(request, container, "Always")}},
    }
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "fastsd-webui", "namespace": request.namespace, "labels": labels},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": WEBUI_PORT, "targetPort": "http"}]}}
    return [deployment, service]


def render(request: ClusterRequest) -> list[dict]:
    """Every manifest of the request, checked options first."""
    check_request(request)
    docs = [pvc(request), *(job(request, s) for s in request.sessions)]
    return docs + (webui(request) if request.webui_model else [])


def plain_env(environ=os.environ) -> dict:
    """The non-secret settings of this machine a cluster job needs (the bucket's address)."""
    return {name: environ[name] for name in PLAIN_ENVS if environ.get(name)}


def to_yaml(docs: list[dict]) -> str:
    """The manifests as one multi-document YAML stream."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data):  # shared label dicts are written out, not as &anchors
            return True

    return "".join("---\n" + yaml.dump(doc, Dumper=Plain, sort_keys=False, width=10_000) for doc in docs)
