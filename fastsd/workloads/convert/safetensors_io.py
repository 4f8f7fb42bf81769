"""Safetensors headers, a streaming reader (one tensor at a time, no mmap) and a streaming writer."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
CAST_CHOICES = {"fp16": "F16", "bf16": "BF16", "fp32": "F32"}
MAX_HEADER = 100 * 1024 * 1024
ALIGN = 8
CAST_CHUNK = 16 * 1024 * 1024  # bytes of cast output held at once


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a safetensors file: dtype, shape and where its bytes lie."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute file offset
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def numel(shape) -> int:
    """Number of elements of a tensor of `shape`."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def corrupt(path: Path, why: str) -> FastsdError:
    """The error for a damaged safetensors file."""
    return bad_input(f"{path} is not a valid safetensors file: {why}",
                     "the file is truncated or corrupt: download or convert it again")


def read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and check a safetensors header without reading any tensor data."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise corrupt(path, f"only {size} bytes")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER or 8 + length > size:
                raise corrupt(path, f"header length {length} does not fit in {size} bytes")
            raw = handle.read(length)
    except OSError as exc:
        raise bad_input(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise corrupt(path, "header is not JSON") from None
    if not isinstance(header, dict):
        raise corrupt(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    base = 8 + length
    tensors, spans = {}, []
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise corrupt(path, f"bad header entry for {name!r}") from None
        if dtype not in DTYPE_BYTES:
            raise corrupt(path, f"unknown dtype {dtype!r} of {name!r}")
        if end - begin != numel(shape) * DTYPE_BYTES[dtype]:
            raise corrupt(path, f"{name!r} spans {end - begin} bytes, its shape needs {numel(shape) * DTYPE_BYTES[dtype]}")
        tensors[name] = TensorInfo(name, dtype, shape, base + begin, base + end)
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise corrupt(path, f"tensor data has a gap or overlap at byte {position}")
        position = end
    if base + position != size:
        raise corrupt(path, f"data should end at byte {base + position}, file has {size}")
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def torch_dtype(name: str):
    """The torch dtype of a safetensors dtype name."""
    import torch

    return {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
            "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
            "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}[name]


class StreamReader:
    """Reads one tensor at a time with plain reads: memory holds that tensor only (no mmap)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tensors, self.metadata = read_header(self.path)
        self._handle = None

    def __enter__(self) -> StreamReader:
        self._handle = open(self.path, "rb")
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def get(self, name: str, into=None):
        """The tensor `name`: a fresh tensor, or a view of `into` (a uint8 scratch buffer) when given."""
        import torch

        info = self.tensors[name]
        handle = self._handle or open(self.path, "rb")
        try:
            buffer = torch.empty(info.nbytes, dtype=torch.uint8) if into is None else into[: info.nbytes]
            handle.seek(info.start)
            got = handle.readinto(memoryview(buffer.numpy()))
        finally:
            if handle is not self._handle:
                handle.close()
        if got != info.nbytes:
            raise corrupt(self.path, f"{name!r} is cut short")
        return buffer.view(torch_dtype(info.dtype)).reshape(info.shape)


@dataclass(frozen=True)
class OutputTensor:
    """One tensor of a file to write: its name, dtype and shape, known before any data is read."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return numel(self.shape) * DTYPE_BYTES[self.dtype]


def build_header(tensors: Iterable[OutputTensor], metadata: dict[str, str] | None) -> bytes:
    """The header bytes (length prefix + JSON padded to 8 bytes) for `tensors` in that order."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for tensor in tensors:
        header[tensor.name] = {"dtype": tensor.dtype, "shape": list(tensor.shape),
                               "data_offsets": [offset, offset + tensor.nbytes]}
        offset += tensor.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % ALIGN)
    return struct.pack("<Q", len(blob)) + blob


def file_size(tensors: list[OutputTensor], metadata: dict[str, str] | None) -> int:
    """The exact size in bytes of the file `write_stream` will produce."""
    return len(build_header(tensors, metadata)) + sum(t.nbytes for t in tensors)


def write_stream(path: Path, tensors: list[OutputTensor], produce: Callable, metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` to `path`: header first, then each tensor from `produce(out)`, one at a time.

    A cast goes through one reused chunk buffer, so it adds CAST_CHUNK bytes, not a second tensor.
    """
    import torch

    chunk = torch.empty(CAST_CHUNK, dtype=torch.uint8)
    with open(path, "wb") as handle:
        handle.write(build_header(tensors, metadata))
        for out in tensors:
            tensor = produce(out)
            if tuple(tensor.shape) != out.shape:
                raise FastsdError(f"internal: {out.name} has shape {tuple(tensor.shape)}, header says {out.shape}")
            flat, dtype = tensor.contiguous().reshape(-1), torch_dtype(out.dtype)
            if flat.dtype == dtype:
                handle.write(memoryview(flat.view(torch.uint8).numpy()))
                continue
            step = CAST_CHUNK // DTYPE_BYTES[out.dtype]
            for begin in range(0, flat.numel(), step):
                part = flat[begin : begin + step]
                target = chunk[: part.numel() * DTYPE_BYTES[out.dtype]].view(dtype)
                target.copy_(part)
                handle.write(memoryview(target.view(torch.uint8).numpy()))
        handle.flush()  # callers publish through fsutil.atomic_path, which fsyncs before the rename
