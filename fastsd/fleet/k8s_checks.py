"""Manifests checked twice: against the official schemas (kubernetes-validate, strict) and by fastsd's rules
that no schema holds (a Job's restart policy, secrets by reference, claims and mounts that exist)."""

from __future__ import annotations

from fastsd.errors import FastsdError, bad_input
from fastsd.secrets import SECRET_ENV_VARS

K8S_VERSION = "1.32.0"  # the oldest Kubernetes with every field rendered here GA (podFailurePolicy: 1.31)
SECRET_NAMES = (*SECRET_ENV_VARS, "AWS_ACCESS_KEY_ID")


def _pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Job", "Deployment"):
        return doc.get("spec", {}).get("template", {}).get("spec")
    return None


def _container_problems(where: str, spec: dict) -> list[str]:
    problems = []
    volumes = {v.get("name") for v in spec.get("volumes", [])}
    for container in spec.get("containers", []):
        at = f"{where} container {container.get('name')}"
        for env in container.get("env", []):
            if env.get("name") in SECRET_NAMES and "value" in env:
                problems.append(f"{at}: {env['name']} is written as a value; give it by secretKeyRef")
        for mount in container.get("volumeMounts", []):
            if mount.get("name") not in volumes:
                problems.append(f"{at}: mounts volume {mount.get('name')!r}, which the pod does not declare")
        for kind in ("limits", "requests"):
            gpus = container.get("resources", {}).get(kind, {}).get("nvidia.com/gpu")
            if gpus is not None and not isinstance(gpus, str):
                problems.append(f"{at}: nvidia.com/gpu {kind} {gpus!r} must be a string quantity such as \"1\"")
    return problems


def semantic_problems(docs: list[dict]) -> list[str]:
    """fastsd's own rules over a set of manifests (schemas accept all of these mistakes)."""
    problems = []
    claims = {d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    pod_labels = []
    for doc in docs:
        where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        spec = _pod_spec(doc)
        if spec is None:
            continue
        restart = spec.get("restartPolicy", "Always")
        if doc["kind"] == "Job":
            if restart not in ("Never", "OnFailure"):
                problems.append(f"{where}: restartPolicy {restart} is not allowed in a Job (Never or OnFailure)")
            policy = doc["spec"].get("podFailurePolicy")
            if policy and restart != "Never":
                problems.append(f"{where}: a podFailurePolicy needs restartPolicy Never")
            names = {c.get("name") for c in spec.get("containers", [])}
            for rule in (policy or {}).get("rules", []):
                named = rule.get("onExitCodes", {}).get("containerName")
                if named is not None and named not in names:
                    problems.append(f"{where}: podFailurePolicy names container {named!r}, which the pod lacks")
        else:
            selector = doc["spec"].get("selector", {}).get("matchLabels", {})
            labels = doc["spec"]["template"].get("metadata", {}).get("labels", {})
            if any(labels.get(k) != v for k, v in selector.items()):
                problems.append(f"{where}: the selector does not match the pod template's labels")
            pod_labels.append(labels)
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(f"{where}: claims volume {claim!r}, which no manifest here creates")
        problems += _container_problems(where, spec)
    for doc in docs:
        if doc.get("kind") == "Service":
            selector = doc["spec"].get("selector", {})
            if not any(all(labels.get(k) == v for k, v in selector.items()) for labels in pod_labels):
                problems.append(f"Service {doc['metadata']['name']}: its selector matches no pod rendered here")
    return problems


def schema_problems(docs: list[dict], version: str = K8S_VERSION) -> list[str]:
    """Each manifest against the official schema of `version`, unknown fields refused (strict)."""
    try:
        import kubernetes_validate
    except ImportError:
        raise FastsdError("kubernetes-validate is not installed here",
                          "pip install kubernetes-validate (the dev extra)") from None
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            problems.append(f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}: {path}: {error.message}")
    return problems


def schemas_available() -> bool:
    """True when kubernetes-validate is installed (the dev extra; a plain install may lack it)."""
    import importlib.util

    return importlib.util.find_spec("kubernetes_validate") is not None


def check_manifests(docs: list[dict], schemas: bool = True) -> None:
    """Raise naming every problem of the manifests (fastsd's rules, then the schemas)."""
    problems = semantic_problems(docs) + (schema_problems(docs) if schemas else [])
    if problems:
        raise bad_input("the manifests have problems:\n  - " + "\n  - ".join(problems),
                        "fix the fields named above")
