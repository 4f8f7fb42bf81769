#!/usr/bin/env bash
# Full-size GPU checks of fastsd on a machine with an NVIDIA GPU (a rented VM, or the H200 lent
# to some development sessions). Installs the CUDA build of the pinned torch when the Python at
# hand has none, runs the gpu-marked tests and the full-size benchmarks, and writes a results
# table to $OUT/results.md (default: ./gpu-results).
#
#   scripts/gpu_check.sh                # everything
#   PRESETS=12gb,24gb scripts/gpu_check.sh
#   scripts/gpu_train_matrix.py --list     # the trainer rows it measures (optimizers, batches, checkpointing, SDXL, compile)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-$PWD/gpu-results}
PRESETS=${PRESETS:-8gb,12gb,16gb,24gb}
STEPS=${STEPS:-30}
VENV=${VENV:-.venv-gpu}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1 FASTSD_TEST_GPU=1

command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found: this needs an NVIDIA GPU" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

# A Python whose torch already sees the GPU is used as it is; otherwise a venv gets the CUDA
# build of the pinned torch (PyPI's Linux wheels of torch==2.13.0 are CUDA builds).
PY=${PYTHON:-python3}
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  PY=$VENV/bin/python
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet torch==2.13.0
  "$PY" -m pip install --quiet -e '.[all,dev,gpu]'
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' \
  | tee -a "$OUT/gpu.txt"

status=0
echo "== trainer: full-size SD1.5 architecture, 512 px, $STEPS steps per preset ($PRESETS)"
"$PY" scripts/gpu_train.py --steps "$STEPS" --presets "$PRESETS" --json "$OUT/gpu_train.json" || status=1
echo "== trainer matrix: 8-bit vs 32-bit Adam per preset, batch 1/4/8, checkpointing on/off, SDXL LoRA 1024 px, eager vs --compile"
"$PY" scripts/gpu_train_matrix.py --steps "$STEPS" --json "$OUT/gpu_train_matrix.json" || status=1
echo "== trainer: a step's inputs sent without a host wait vs a plain copy (SD1.5 UNet, 512 px, bf16)"
"$PY" scripts/gpu_step_overlap.py | tee "$OUT/gpu_step_overlap.txt" || status=1
echo "== captioner: blip-base architecture, batch 1 and 32"
"$PY" scripts/gpu_caption.py --batches 1,32 --images 64 || status=1
echo "== converter: full-size SD1.5 to fp16 (CPU work, timed on this machine)"
"$PY" scripts/bench_convert.py | tee "$OUT/bench_convert.txt" || status=1
echo "== gpu-marked tests"
mapfile -t GPU_TESTS < <(grep -rl "mark.gpu" tests --include='*.py')
"$PY" -m pytest -q -p no:cacheprovider -m gpu "${GPU_TESTS[@]}" 2>&1 | tee "$OUT/tests.txt" || status=1
"$PY" scripts/gpu_results.py "$OUT" | tee "$OUT/results.md"
exit $status
