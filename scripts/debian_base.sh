#!/usr/bin/env bash
# Make the images' base, `debian:bookworm-slim`, locally when no registry can give it to us.
#
#   scripts/debian_base.sh [NAME]     (default debian:bookworm-slim; DOCKER=client to use)
#
# Nothing happens when the image is already there (pulled or made before). Otherwise, with root
# and debootstrap, a minimal Debian 12 is bootstrapped from Debian's own packages (~30 s) and
# imported under the same name, so the Dockerfiles build unchanged here and on a GPU VM.
set -Eeuo pipefail

NAME="${1:-debian:bookworm-slim}"
DOCKER="${DOCKER:-docker}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { printf 'error: %s\n' "$1" >&2; [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2; exit 1; }

if "$DOCKER" image inspect "$NAME" >/dev/null 2>&1; then exit 0; fi
if "$DOCKER" pull "$NAME" >/dev/null 2>&1; then exit 0; fi

[ "$(id -u)" = 0 ] || die "$NAME is not here, cannot be pulled, and making it needs root (debootstrap)" \
  "run as root, or pull $NAME on a machine that reaches Docker Hub"
if ! command -v debootstrap >/dev/null; then
  command -v apt-get >/dev/null || die "$NAME cannot be pulled and debootstrap is not installed" \
    "install debootstrap, or docker pull $NAME where a registry answers"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
printf 'base: bootstrapping Debian 12 (bookworm, minbase) from %s as %s\n' "$MIRROR" "$NAME" >&2
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
# What the official slim image drops: apt lists and docs; keep the sources for later apt-get.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | "$DOCKER" import \
  --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$NAME" >/dev/null
printf 'base: %s made locally\n' "$NAME" >&2
