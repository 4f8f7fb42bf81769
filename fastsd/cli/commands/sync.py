"""`fastsd sync push|pull|show SESSION`: a session to and from S3-compatible object storage."""

from __future__ import annotations


def register(commands) -> None:
    parser = commands.add_parser(
        "sync", help="sessions to and from S3-compatible storage (push, pull, show)",
        description="Copy a session's durable files (complete checkpoints, exports, session files) to the "
                    "bucket in FASTSD_SYNC_URL (s3://BUCKET/PREFIX; AWS_ENDPOINT_URL for R2, B2 or MinIO; "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or bring one back. `fastsd run` does both "
                    "by itself when FASTSD_SYNC_URL is set.")
    sub = parser.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    push = sub.add_parser("push", help="upload what changed in a session, the manifest last")
    push.add_argument("session", metavar="SESSION", help="the session (see: fastsd session list)")
    push.set_defaults(handler=push_cmd, data_root_use="existing")
    pull = sub.add_parser("pull", help="restore a session missing here from the bucket")
    pull.add_argument("session", metavar="SESSION", help="the session's name in the bucket")
    pull.set_defaults(handler=pull_cmd, data_root_use="new")
    show = sub.add_parser("show", help="what the bucket holds of a session (its manifest)")
    show.add_argument("session", metavar="SESSION", help="the session's name in the bucket")
    show.set_defaults(handler=show_cmd)


def _bucket():
    from fastsd.errors import bad_input
    from fastsd.fleet.bucket import SYNC_URL_ENV, open_bucket, sync_configured

    if not sync_configured():
        raise bad_input(f"{SYNC_URL_ENV} is not set: no bucket to sync with",
                        f"export {SYNC_URL_ENV}=s3://BUCKET/PREFIX (and the bucket's keys)")
    return open_bucket()


def push_cmd(args, ctx) -> int:
    """Upload the session's durable files."""
    from fastsd.fleet.sync import upload_session

    result = upload_session(ctx.root, args.session, _bucket())
    ctx.emit(result, f"{args.session}: {result['uploaded']} of {result['files']} files uploaded "
                     f"({result['uploaded_bytes']} bytes, {result['seconds']} s)")
    return 0


def pull_cmd(args, ctx) -> int:
    """Restore a session that is not on this volume."""
    from fastsd.errors import bad_input
    from fastsd.fleet.sync import restore_session

    bucket = _bucket()
    ctx.root.sessions_dir.mkdir(parents=True, exist_ok=True)
    result = restore_session(ctx.root, args.session, bucket)
    if result is None:
        raise bad_input(f"session {args.session} is not in {bucket.target.url}",
                        "push it first from the machine that has it: fastsd sync push " + args.session)
    ctx.emit(result, f"{args.session}: restored {result['files']} files ({result['bytes']} bytes, "
                     f"{result['seconds']} s)")
    return 0


def show_cmd(args, ctx) -> int:
    """The session's manifest in the bucket."""
    from fastsd.errors import bad_input
    from fastsd.fleet.sync import read_manifest

    bucket = _bucket()
    manifest = read_manifest(bucket, args.session)
    if manifest is None:
        raise bad_input(f"session {args.session} is not in {bucket.target.url}", "see: fastsd sync push --help")
    files = manifest["files"]
    checkpoints = sorted({rel.split("/")[1] for rel in files if rel.startswith("checkpoints/")})
    text = (f"{args.session} in {bucket.target.url}: {len(files)} files, "
            f"{sum(e['size'] for e in files.values())} bytes, written {manifest['written_at']}\n"
            f"checkpoints: {', '.join(checkpoints) or 'none'}")
    ctx.emit({"session": args.session, "files": len(files), "checkpoints": checkpoints,
              "written_at": manifest["written_at"]}, text)
    return 0
