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

# The mount point that holds PATH: the longest mount point of /proc/self/mountinfo above it.
# (Mount points there escape spaces as \040; FASTSD_MOUNTINFO lets the tests give their own table.)
mount_point_of() {
  local path="$1"
  awk -v path="$path" '
    { point = $5; gsub(/\\040/, " ", point)
      if (path == point || point == "/" || index(path, point "/") == 1) {
        if (length(point) > length(best)) best = point } }
    END { print best }' "${FASTSD_MOUNTINFO:-/proc/self/mountinfo}"
}

# A pod's fresh volume (/workspace) has no data folder yet: make it there, never on the image's layer.
make_data_folder_on_a_volume() {
  local parent
  parent="$(dirname "${FASTSD_DATA}")"
  [ -d "${parent}" ] || return 0
  [ "$(mount_point_of "$(cd "${parent}" && pwd -P)")" != "/" ] || return 0
  mkdir -p "${FASTSD_DATA}" 2>/dev/null || die "cannot create the data folder ${FASTSD_DATA} on the volume as uid $(id -u)" \
    "create it and chown it to $(id -u):$(id -g), or point FASTSD_DATA at a writable folder of the volume"
}

check_volume() {
  [ -d "${FASTSD_DATA}" ] || make_data_folder_on_a_volume
  [ -d "${FASTSD_DATA}" ] || die "the data volume ${FASTSD_DATA} is not mounted" \
    "mount a folder or volume at ${FASTSD_DATA} (compose does it; on a pod set FASTSD_DATA to the volume)"
  # Without a mounted volume every write lands in the container's own layer and dies with it.
  if [ "$(mount_point_of "$(cd "${FASTSD_DATA}" && pwd -P)")" = "/" ] && [ "${FASTSD_ALLOW_NO_VOLUME:-0}" != 1 ]; then
    die "${FASTSD_DATA} is not a mounted volume: what this container writes there would be lost with it" \
      "mount the data folder (docker run -v /srv/fastsd:${FASTSD_DATA}; compose and the fastsd CLI do it), or on a pod point FASTSD_DATA at the pod's volume (e.g. /workspace/fastsd)"
  fi
  # Run as any uid: the volume's owner may not be the image's user, so HOME may not be ours.
  if [ ! -w "${HOME:-/}" ]; then export HOME="/tmp/fastsd-home"; mkdir -p "$HOME"; fi
  [ -w "${FASTSD_DATA}" ] || die "the data volume ${FASTSD_DATA} is not writable by uid $(id -u)" \
    "chown -R $(id -u):$(id -g) the host folder, or set FASTSD_UID/FASTSD_GID in compose/.env"
  local folder
  for folder in "${VOLUME_FOLDERS[@]}"; do
    mkdir -p "${FASTSD_DATA}/${folder}"
  done
  if [ -O "${FASTSD_DATA}/secrets" ]; then chmod 700 "${FASTSD_DATA}/secrets"; fi
}

# `entrypoint.sh train x` and `entrypoint.sh fastsd train x` both run `fastsd train x`.
exec_fastsd() {
  if [ "$#" -gt 0 ] && [ "$1" = "fastsd" ]; then shift; fi
  exec fastsd "$@"
}
