#!/usr/bin/env bash
# fastsd-trainer, -converter and -captioner: check the data volume, then run the fastsd command given.
set -Eeuo pipefail
VOLUME_LIB="${FASTSD_VOLUME_LIB:-/usr/local/lib/fastsd/volume.sh}"
# shellcheck source=SCRIPTDIR/../base/volume.sh
source "${VOLUME_LIB}"

check_volume
exec_fastsd "$@"
