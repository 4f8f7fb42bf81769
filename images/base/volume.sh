#!/usr/bin/env bash
# Shared by every entrypoint: check the data volume and lay out its top-level folders.
# Sourced, not run; the caller has already set -Eeuo pipefail.

FASTSD_DATA="${FASTSD_DATA:-/data}"
export FASTSD_DATA
export HF_HOME="${HF_HOME:-${FASTSD_DATA}/cache/huggingface}"

# Folders every workload expects on the volume (fastsd.layout.DataRoot.ensure creates the same).
VOLUME_FOLDERS=(
  sessions
  outputs
  secrets
  cache/huggingface
  models/diffusers
  models/Stable-diffusion
  models/Lora
  models/VAE
  models/ControlNet
  models/embeddings
  models/ESRGAN
)

die() {
  printf 'error: %s\n' "$1" >&2
  if [ -n "${2:-}" ]; then printf 'hint: %s\n' "$2" >&2; fi
  exit 1
}

check_volume() {
  [ -d "${FASTSD_DATA}" ] || die "the data volume ${FASTSD_DATA} is not mounted" \
    "mount a folder or volume at ${FASTSD_DATA} (compose does it; on a pod set FASTSD_DATA to the volume)"
  [ -w "${FASTSD_DATA}" ] || die "the data volume ${FASTSD_DATA} is not writable by uid $(id -u)" \
    "chown -R $(id -u):$(id -g) the host folder, or set FASTSD_UID/FASTSD_GID in compose/.env"
  local folder
  for folder in "${VOLUME_FOLDERS[@]}"; do
    mkdir -p "${FASTSD_DATA}/${folder}"
  done
  chmod 700 "${FASTSD_DATA}/secrets"
}

# `entrypoint.sh train x` and `entrypoint.sh fastsd train x` both run `fastsd train x`.
exec_fastsd() {
  if [ "$#" -gt 0 ] && [ "$1" = "fastsd" ]; then shift; fi
  exec fastsd "$@"
}
