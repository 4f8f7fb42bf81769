"""Before a job is submitted: SkyPilot's own parsing and feature checks (offline) plus fastsd's rules."""

from __future__ import annotations

from pathlib import PurePosixPath

from fastsd.errors import FastsdError, bad_input
from fastsd.layout import CONTAINER_ROOT

# SkyPilot volumes (a RunPod network volume, a Kubernetes PVC) exist on these infras only.
VOLUME_INFRAS = ("runpod", "kubernetes", "k8s")
SKYPILOT_HINT = "pip install 'fastsd[dev]' (or: pip install skypilot==0.14.1) on the machine that launches"


def load_sky():
    """The `sky` package, or a clear error saying how to get it."""
    try:
        import sky
    except ImportError:
        raise FastsdError("SkyPilot is not installed here", SKYPILOT_HINT) from None
    return sky


def infra_cloud(infra: str | None) -> str | None:
    """The cloud part of an infra string (`runpod/US-CA-2` -> `runpod`)."""
    return infra.split("/", 1)[0].lower() if infra else None


def fastsd_problems(config: dict, sync_on: bool) -> list[str]:
    """fastsd's own rules for a task: where checkpoints live, and that a restarted job finds them."""
    problems = []
    data = PurePosixPath(CONTAINER_ROOT)
    resources = config["resources"]
    for target, source in config.get("file_mounts", {}).items():
        path = PurePosixPath(target)
        if isinstance(source, dict) and (path == data or data in path.parents or path in data.parents):
            problems.append(f"the bucket {source['source']} would be mounted at {target}, over the data root "
                            f"{data}: a FUSE mount does not make folder renames atomic, and checkpoints are "
                            "folders renamed into place. Keep /data on local disk or a volume (--volume) and "
                            "let fastsd upload complete checkpoints (FASTSD_SYNC_URL)")
    recovers = resources.get("use_spot") or resources["job_recovery"]["max_restarts_on_errors"] > 0
    if recovers and not config.get("volumes") and not sync_on:
        problems.append("a restarted job lands on a new machine with an empty disk: without a volume "
                        "(--volume) or checkpoint sync (FASTSD_SYNC_URL) it would train from scratch")
    cloud = infra_cloud(resources.get("infra"))
    if config.get("volumes") and cloud not in VOLUME_INFRAS:
        where = f"on {cloud}" if cloud else "without --infra"
        problems.append(f"--volume {config['volumes'][str(data)]}: SkyPilot volumes exist only on "
                        f"{', '.join(VOLUME_INFRAS[:2])}, not {where}; use checkpoint sync (FASTSD_SYNC_URL) there")
    return problems


def parse_task(config: dict):
    """The config parsed and validated by SkyPilot itself (`sky.Task`), each error told plainly."""
    import copy

    sky = load_sky()
    try:  # SkyPilot pops keys from the dict it is given
        return sky.Task.from_yaml_config(copy.deepcopy(config))
    except Exception as error:  # noqa: BLE001 - SkyPilot raises ValueError and its own config errors
        raise bad_input(f"SkyPilot refuses the task of {config.get('name')}: {error}",
                        "check --infra, --gpus and --mount") from None


def feature_problems(task, config: dict) -> list[str]:
    """What the chosen infra cannot do, by SkyPilot's own offline feature checks."""
    from sky.clouds.cloud import CloudImplementationFeatures as Feature
    from sky.utils import registry

    cloud_name = infra_cloud(config["resources"].get("infra"))
    if cloud_name is None:
        return []  # SkyPilot's optimizer picks among the enabled clouds those that can
    wanted = {Feature.DOCKER_IMAGE: "a docker image (the fastsd-pod image)"}
    if config.get("num_nodes", 1) > 1:
        wanted[Feature.MULTI_NODE] = f"{config['num_nodes']} nodes"
    if config["resources"].get("use_spot"):
        wanted[Feature.SPOT_INSTANCE] = "spot instances (--spot)"
    if any(isinstance(s, dict) and s.get("mode") == "MOUNT" for s in config.get("file_mounts", {}).values()):
        wanted[Feature.STORAGE_MOUNTING] = "bucket mounts (--mount)"
    cloud = registry.CLOUD_REGISTRY.from_str(cloud_name)
    problems = []
    for feature, what in wanted.items():
        for resources in task.resources:
            try:
                cloud.check_features_are_supported(resources, {feature})
            except ImportError as error:
                raise FastsdError(f"SkyPilot's checks for {cloud_name} need more packages: {error}",
                                  f"pip install 'skypilot[{cloud_name}]==0.14.1'") from None
            except Exception:  # noqa: BLE001 - NotSupportedError: the infra cannot
                problems.append(f"{cloud_name} does not support {what}")
                break
    return problems


def check_task(config: dict, sync_on: bool):
    """The parsed sky.Task when everything holds; otherwise every problem at once, before submitting."""
    problems = fastsd_problems(config, sync_on)
    task = parse_task(config)
    problems += feature_problems(task, config)
    if problems:
        raise bad_input(f"the job of {config['name']} cannot run as asked:\n  - " + "\n  - ".join(problems),
                        "change the options named above (fastsd fleet launch --help)")
    return task
