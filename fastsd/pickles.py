"""Pickle checkpoints (.ckpt/.pt/.pth/.bin) without running them: a restricted scan, then a safe load.

Every global a pickle names is checked against a short allow-list (tensor rebuild, storages,
OrderedDict); the scan substitutes inert stand-ins for them, so no code from the file ever runs.
Only a file that passes the scan is loaded, and then only with torch's `weights_only` loader.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

from fastsd.errors import EXIT_BAD_INPUT, FastsdError, bad_input

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_STORAGES = {f"{kind}Storage" for kind in (
    "Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexFloat", "ComplexDouble", "Untyped")}
_DTYPES = {"float16", "float32", "float64", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}


class TensorStub:
    """What the scan puts where a tensor would be: only its shape."""

    def __init__(self, shape) -> None:
        self.shape = tuple(shape)


class _StorageStub:
    def __init__(self, *args, **kwargs) -> None:
        pass


def _rebuild_tensor(storage, offset, size, *rest, **kwargs) -> TensorStub:
    return TensorStub(size)


def _rebuild_parameter(data, *rest, **kwargs):
    return data


def _allowed(module: str, name: str):
    """The inert stand-in for an allowed global, or None."""
    if module == "collections" and name == "OrderedDict":
        return OrderedDict
    if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
        return _rebuild_tensor
    if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
        return _rebuild_parameter
    if module in ("torch", "torch.storage") and (name in _STORAGES or name == "TypedStorage"):
        return _StorageStub
    if module == "torch" and name in _DTYPES:
        return name
    if module == "torch" and name == "Size":
        return tuple
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle, source: str) -> None:
        super().__init__(handle)
        self.source = source

    def find_class(self, module: str, name: str):
        stand_in = _allowed(module, name)
        if stand_in is None:
            raise FastsdError(
                f"{self.source} is refused as unsafe: its pickle calls {module}.{name}, which a model file "
                "never needs (loading it could run code); nothing was executed",
                "do not load this file; ask its publisher for a .safetensors version",
                code=EXIT_BAD_INPUT,
            )
        return stand_in

    def persistent_load(self, pid):
        return _StorageStub()


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load(handle, source: str):
    try:
        return _RestrictedUnpickler(handle, source).load()
    except FastsdError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a checkpoint we accept"
        raise FastsdError(f"{source} is not a readable PyTorch checkpoint: {type(exc).__name__}: {exc}",
                          "check that the download is complete and is a model file") from None


def _objects(path: Path, label: str):
    """The unpickled top-level objects: data.pkl of the zip format, or the legacy stream."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not names:
                raise FastsdError(f"{label} is a zip file without data.pkl, not a PyTorch checkpoint")
            for name in names:
                with archive.open(name) as handle:
                    yield _load(handle, label)
        return
    with open(path, "rb") as handle:
        first = _load(handle, label)
        if first != LEGACY_MAGIC:
            yield first  # a plain pickled dict
            return
        _load(handle, label)  # protocol version
        _load(handle, label)  # system info
        yield _load(handle, label)


def scan_pickle(path: Path, label: str | None = None) -> dict[str, tuple[int, ...]]:
    """Scan a pickle checkpoint without running it; returns {tensor key: shape}, refuses unsafe files."""
    found: dict[str, tuple[int, ...]] = {}
    for obj in _objects(Path(path), label or Path(path).name):
        _collect(obj, "", found)
    return found


def _collect(obj, prefix: str, found: dict) -> None:
    if isinstance(obj, TensorStub):
        found[prefix] = obj.shape
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str):
                # Lightning checkpoints keep the weights under state_dict
                _collect(value, key if prefix in ("", "state_dict") else f"{prefix}.{key}", found)


def safe_load_ckpt(path: Path) -> dict:
    """The tensors of a `.ckpt` (its `state_dict` when nested), loaded only after the scan passed."""
    import torch

    path = Path(path)
    scan_pickle(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's restricted unpickler is the second line of defence
        raise bad_input(f"{path} could not be loaded safely: {exc}", "use a .safetensors file") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise bad_input(f"{path} holds a {type(data).__name__}, not a dict of tensors")
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise bad_input(f"{path} holds no tensors")
    return tensors
