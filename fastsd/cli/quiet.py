"""Library noise off in workloads: diffusers/transformers progress bars and advisory warnings.

fastsd's own bars (training steps, captioning, downloads) are plain tqdm bars and stay. The
libraries are imported lazily, deep inside each workload, so their switches are flipped the
moment their logging modules load rather than by importing them up front (start-up time).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import warnings

QUIET_MODULES = ("diffusers.utils.logging", "transformers.utils.logging")
# Loggers that speak at import: torchao (its CUDA kernels cannot load on a CPU, and int8 weight-only
# needs none of them; peft imports it when present) and torch's pytree (a deprecation torchao triggers).
QUIET_LOGGERS = ("torchao", "torch.utils._pytree")
QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error",
             "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def _silence(logging_module) -> None:
    logging_module.disable_progress_bar()
    logging_module.set_verbosity_error()


class _SilenceOnImport(importlib.abc.MetaPathFinder):
    """Finds the libraries' logging modules as usual and silences each right after it runs."""

    def find_spec(self, name, path=None, target=None):
        if name not in QUIET_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            _silence(module)

        spec.loader.exec_module = exec_module
        return spec


def quiet_libraries() -> None:
    """Silence the libraries' own bars and warnings for the rest of this process (and its children)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module=r"torchvision(\.|$)")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in QUIET_MODULES:
        if name in sys.modules:
            _silence(sys.modules[name])
    if not any(isinstance(finder, _SilenceOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SilenceOnImport())
