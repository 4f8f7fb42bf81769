"""`--compile`: regional torch.compile of the denoiser, its kernels cached on the data volume.

Only the blocks a UNet or transformer repeats (diffusers' `_repeated_blocks`: SD's transformer
blocks, Flux's and FLUX.2's double and single blocks, Z-Image's and Qwen-Image's) are compiled:
one block's graph serves all its copies, so compiling takes seconds to a minute rather than the
minutes a whole-model compile takes, and the weights keep their names (exports and checkpoints
are unchanged). Inductor writes C++ (CPU) or Triton (GPU) kernels, so it needs a C compiler and
Python's headers; its caches live in cache/torch-compile on the volume, so a resumed or repeated
run, even in a new container, loads the kernels instead of compiling again. The first step of a
stage carries the compile; it is reported apart and left out of the steps/s.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

from fastsd.errors import FastsdError, bad_input

CACHE_FOLDER = "torch-compile"


def compiler_problem() -> str | None:
    """Why torch.compile cannot build kernels here, or None."""
    if not shutil.which(os.environ.get("CXX", "g++")):
        return "no C++ compiler (g++) is installed"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "Python's headers (Python.h) are not installed"
    return None


def check_compile(settings) -> None:
    """Refuse --compile before any work starts where its kernels cannot be built."""
    if settings.compile and (problem := compiler_problem()) is not None:
        raise bad_input(f"--compile needs a C compiler to build its kernels, but {problem}",
                        "train in the trainer image (it has both), install g++ and python3-dev, "
                        "or drop --compile")


def use_volume_cache(cache: Path) -> Path:
    """Point Inductor's and Triton's caches at `cache`/torch-compile; returns it.

    Set outright: importing torch's optional parts may already have set Inductor's variable to its
    default in /tmp, which a container loses."""
    folder = cache / CACHE_FOLDER
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder / "inductor")
    os.environ["TRITON_CACHE_DIR"] = str(folder / "triton")
    return folder


def compile_blocks(model) -> None:
    """Compile each repeated block of `model` in place."""
    if not getattr(model, "_repeated_blocks", None):
        raise FastsdError(f"--compile: {type(model).__name__} names no repeated blocks to compile",
                          "drop --compile for this model")
    model.compile_repeated_blocks()
