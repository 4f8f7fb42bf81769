"""Loading `.ckpt` pickles without running them: every global is checked against an allow-list first."""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path

from fastsd.errors import bad_input

# What a checkpoint of tensors legitimately names: containers, tensor rebuilders, storage types.
ALLOWED_GLOBALS = frozenset({
    "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.slice",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch.Size", "torch.device",
    "torch.serialization._get_layout", "torch.storage._load_from_bytes",
    *(f"torch.{kind}Storage" for kind in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char",
                                          "Byte", "Bool", "UntypedStorage")),
    *(f"torch.{dtype}" for dtype in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16",
                                     "int8", "uint8", "bool")),
})
_STRINGS = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING")


def pickle_globals(data: bytes) -> list[str]:
    """Every global a pickle names (GLOBAL and STACK_GLOBAL), found by reading opcodes, never executing."""
    names, stack, memo = [], [], {}
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        if opcode.name == "GLOBAL":
            names.append(arg.replace(" ", ".", 1))
        elif opcode.name in _STRINGS:
            stack.append(arg)
        elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT") and stack:
            memo[arg] = stack[-1]
        elif opcode.name == "MEMOIZE" and stack:
            memo[len(memo)] = stack[-1]
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo.get(arg, "?"))
        elif opcode.name == "STACK_GLOBAL":
            names.append(f"{stack[-2] if len(stack) > 1 else '?'}.{stack[-1] if stack else '?'}")
    return names


def _pickles_of(path: Path) -> list[bytes]:
    """The pickle streams of a torch checkpoint (the data.pkl of a zip), or the file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(n) for n in archive.namelist() if n.endswith(".pkl")]
    return [path.read_bytes()]


def check_pickle(path: Path) -> None:
    """Refuse `path` when its pickle names any global outside the allow-list (nothing is executed)."""
    path = Path(path)
    try:
        streams = _pickles_of(path)
        found = [g for stream in streams for g in pickle_globals(stream)]
    except (OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        raise bad_input(f"{path} is not a readable checkpoint: {exc}", "use a .safetensors file") from None
    refused = sorted({g for g in found if g not in ALLOWED_GLOBALS})
    if refused:
        raise bad_input(f"{path} is refused: its pickle calls {', '.join(refused)}, which a checkpoint of "
                        "tensors never needs (loading it could run code); nothing was executed",
                        "get a .safetensors version of this model, or convert it where it was made")


def safe_load_ckpt(path: Path) -> dict:
    """The tensors of a `.ckpt` (its `state_dict` when nested), loaded only after the allow-list check."""
    import torch

    path = Path(path)
    check_pickle(path)
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
