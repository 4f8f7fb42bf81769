"""The demo pipeline in the containers against local processes: wall time of each, and the ratio.

    python scripts/bench_containers.py        (needs the images: make images IMAGES="base trainer converter captioner")

Each side runs `fastsd run demo` (prepare, caption, train both stages, export --verify) on a fresh
data root with the demo's tiny models, one after the other, in the same run: local first, then
`--runtime docker` with every step in its own container through docker compose (host network).
Target: containers at most 1.5x the local time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import demo  # noqa: E402


def prepared_root(parent: Path, name: str) -> tuple[Path, Path]:
    """A data root holding the tiny models and the photos (not timed)."""
    data = parent / name
    env = {**os.environ, "FASTSD_DATA": str(data)}
    code = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
            "from fastsd.layout import resolve_data_root\n"
            "root = resolve_data_root(); root.ensure(); demo.build_models(root)\n"
            "print(demo.write_photos(root.root / 'demo-photos'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return data, Path(done.stdout.strip().splitlines()[-1])


def timed_run(data: Path, photos: Path, runtime: str) -> float:
    env = {**os.environ, "FASTSD_DATA": str(data), "FASTSD_NETWORK": "host", "FASTSD_PROJECT": "fastsd-bench",
           "FASTSD_COMPOSE_FILE": str(ROOT / "compose" / "docker-compose.yml"), "OMP_NUM_THREADS": "2"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fastsd", *demo.run_argv(photos, runtime)], env=env, cwd=data.parent,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{runtime} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    parent = Path(tempfile.mkdtemp(prefix="fastsd-bench-containers-"))
    try:
        local = timed_run(*prepared_root(parent, "local"), "local")
        docker = timed_run(*prepared_root(parent, "docker"), "docker")
    finally:
        subprocess.run(["docker", "compose", "-p", "fastsd-bench", "down"], capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)
    print(f"fastsd run demo, local processes:  {local:6.1f} s")
    print(f"fastsd run demo, containers:       {docker:6.1f} s")
    print(f"ratio containers / local:          {docker / local:6.2f}x  (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
