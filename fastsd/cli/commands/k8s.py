"""`fastsd k8s render|check`: plain Kubernetes manifests for a team with a cluster, checked before use."""

from __future__ import annotations


def register(commands) -> None:
    parser = commands.add_parser(
        "k8s", help="Kubernetes manifests: a PVC, one Job per session, the web UI (render, check)",
        description="Render plain Kubernetes YAML: the data volume as a PersistentVolumeClaim, one Job per "
                    "session running `fastsd run` (preemptions do not count as failures), and the web UI as a "
                    "Deployment + Service. Secrets come from a Secret by reference. The output is validated "
                    "against the official schemas (strict) and by fastsd's own checks.")
    sub = parser.add_subparsers(dest="k8s_command", metavar="ACTION", required=True)
    render = sub.add_parser("render", help="print (or write) the manifests")
    render.add_argument("sessions", nargs="*", metavar="SESSION",
                        help="one Job each; its photos are read from inputs/SESSION on the volume")
    render.add_argument("--model", metavar="ID", help="base model of new sessions")
    render.add_argument("--run-options", default="", metavar="'OPTIONS'",
                        help="more `fastsd run` options for every Job, e.g. --run-options='--mode lora'")
    render.add_argument("--webui", metavar="MODEL", help="also serve MODEL (a session or model id) in the web UI")
    render.add_argument("--namespace", default="default", help="namespace of every object (default default)")
    render.add_argument("--storage", default="200Gi", metavar="SIZE", help="size of the volume (default 200Gi)")
    render.add_argument("--storage-class", metavar="NAME", help="storage class of the volume (default: the cluster's)")
    render.add_argument("--access-mode", default="ReadWriteMany", metavar="MODE",
                        help="ReadWriteMany (default: Jobs on several nodes) or ReadWriteOnce (one pod)")
    render.add_argument("--gpus", type=int, default=1, metavar="N", help="GPUs per Job (default 1)")
    render.add_argument("--max-restarts", type=int, default=3, metavar="N",
                        help="failures a Job may retry (preemptions are not counted; default 3)")
    render.add_argument("--secret", default="fastsd-secrets", metavar="NAME",
                        help="the Secret holding HF_TOKEN, AWS_* keys, FASTSD_WEB_PASSWORD (default fastsd-secrets)")
    render.add_argument("--image-tag", metavar="TAG", help="tag of the fastsd images (default: this version)")
    render.add_argument("--out", metavar="FILE", help="write the YAML to FILE (default: print it)")
    render.set_defaults(handler=render_cmd)
    check = sub.add_parser("check", help="check manifests (a rendered, hand-edited file) the same way")
    check.add_argument("file", metavar="FILE", help="a YAML file of manifests")
    check.set_defaults(handler=check_cmd)


def _schemas(ctx) -> bool:
    """Whether the official schemas can be checked here; says so when they cannot."""
    import sys

    from fastsd.fleet.k8s_checks import schemas_available

    if schemas_available():
        return True
    sys.stderr.write("note: kubernetes-validate is not installed: fastsd's own checks ran, the official "
                     "schemas did not (pip install kubernetes-validate)\n")
    return False


def render_cmd(args, ctx) -> int:
    """Render, check (schemas and fastsd's rules), then print or write the manifests."""
    import shlex

    from fastsd.cli.commands.run import parse_step
    from fastsd.errors import bad_input
    from fastsd.fleet.k8s import ClusterRequest, plain_env, render, to_yaml
    from fastsd.fleet.k8s_checks import check_manifests
    from fastsd.layout import CONTAINER_ROOT, DataRoot, validate_name
    from fastsd.registry import image_for

    extra = shlex.split(args.run_options)
    if "--runtime" in extra or "--serve" in extra:
        raise bad_input("--runtime and --serve cannot go to a Job's fastsd run",
                        "each Job runs fastsd run --runtime local; --webui renders the web UI")
    run_argv = [*(["--model", args.model] if args.model else []), *extra]
    for session in args.sessions:  # the run's own option checks, before anything is written
        photos = DataRoot(CONTAINER_ROOT).inputs(validate_name(session))
        parse_step(["run", session, "--photos", str(photos), *run_argv])
    request = ClusterRequest(
        sessions=tuple(args.sessions), run_argv=tuple(run_argv), train_image=image_for("pod", args.image_tag),
        webui_image=image_for("webui", args.image_tag), webui_model=args.webui, namespace=args.namespace,
        storage=args.storage, storage_class=args.storage_class, access_mode=args.access_mode, gpus=args.gpus,
        max_restarts=args.max_restarts, secret=validate_name(args.secret, "Secret name"), env=plain_env())
    docs = render(request)
    check_manifests(docs, schemas=_schemas(ctx))
    text = to_yaml(docs)
    if args.out:
        from pathlib import Path

        from fastsd.fsutil import atomic_write_text

        atomic_write_text(Path(args.out), text)
        ctx.emit({"written": args.out, "objects": len(docs)}, f"{len(docs)} manifests written to {args.out}")
    else:
        ctx.emit({"manifests": docs}, text)
    return 0


def check_cmd(args, ctx) -> int:
    """Check a file of manifests."""
    from pathlib import Path

    import yaml

    from fastsd.errors import bad_input
    from fastsd.fleet.k8s_checks import check_manifests

    try:
        docs = [d for d in yaml.safe_load_all(Path(args.file).read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as error:
        raise bad_input(f"cannot read {args.file}: {error}", "give a YAML file of Kubernetes manifests") from None
    if not all(isinstance(d, dict) for d in docs):
        raise bad_input(f"{args.file} holds something other than manifests", "each document must be a mapping")
    check_manifests(docs, schemas=_schemas(ctx))
    ctx.emit({"file": args.file, "objects": len(docs), "ok": True}, f"{args.file}: {len(docs)} manifests, no problems")
    return 0
