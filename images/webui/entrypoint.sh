#!/usr/bin/env bash
# fastsd-webui: check the data volume, link its model folders into A1111, then run fastsd
# (`fastsd webui --in-process` computes A1111's flags, writes the auth file and starts it).
# `entrypoint.sh link-models` only links, for tests and for debugging.
set -Eeuo pipefail
VOLUME_LIB="${FASTSD_VOLUME_LIB:-/usr/local/lib/fastsd/volume.sh}"
# shellcheck source=SCRIPTDIR/../base/volume.sh
source "${VOLUME_LIB}"

A1111_DIR="${A1111_DIR:-/opt/a1111}"

# A1111 folder (relative to A1111_DIR) -> volume folder (relative to FASTSD_DATA).
LINKS=(
  "models/Stable-diffusion:models/Stable-diffusion"
  "models/Lora:models/Lora"
  "models/VAE:models/VAE"
  "models/ControlNet:models/ControlNet"
  "models/ESRGAN:models/ESRGAN"
  "embeddings:models/embeddings"
  "outputs:outputs"
)

link_models() {
  local pair inside volume
  for pair in "${LINKS[@]}"; do
    inside="${A1111_DIR}/${pair%%:*}"
    volume="${FASTSD_DATA}/${pair#*:}"
    mkdir -p "${volume}" "$(dirname "${inside}")"
    if [ -d "${inside}" ] && [ ! -L "${inside}" ]; then
      # A real folder from the image: keep it aside rather than lose what it holds.
      mv "${inside}" "${inside}.image-default"
    fi
    ln -sfn "${volume}" "${inside}"
  done
}

check_volume
link_models
if [ "${1:-}" = "link-models" ]; then exit 0; fi
exec_fastsd "$@"
