#!/usr/bin/env bash
# Serve local mirrors of the GitHub repositories the webui (or comfyui) image clones, on 127.0.0.1
# only, so the image builds where GitHub cannot be reached (CI here) with the same clone.sh and
# commit checks. GIT_MIRROR_DOCKERFILE picks the image (default images/webui/Dockerfile); each
# image has its own ports and served copy, so both can build at once.
#
#   git_mirror.sh check   which repositories the webui Dockerfile needs are missing (exit 3 if any)
#   git_mirror.sh start   serve them: git daemon (git://) and an HTTP server for archive zips;
#                         prints the docker build arguments on its last line
#   git_mirror.sh stop    stop both servers
#
# GIT_MIRRORS: folders, separated by ':', holding bare repositories as OWNER/NAME.git and archives
# as OWNER/NAME-COMMIT.zip (default ../shared/git beside the project). A bare repository may be
# partial (blobs missing, e.g. a snapshot without its large sample images): the build fetches
# commits and trees only, then the blobs of the files it checks out.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

MIRRORS="${GIT_MIRRORS:-../shared/git}"
DOCKERFILE="${GIT_MIRROR_DOCKERFILE:-images/webui/Dockerfile}"  # what it reads the needed repositories from
IMAGE="$(basename "$(dirname "$DOCKERFILE")")"
case "$IMAGE" in comfyui) port_base=9428 ;; *) port_base=9418 ;; esac
SERVED="${GIT_MIRROR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fastsd/git-mirror/$IMAGE}"
GIT_PORT="${GIT_MIRROR_PORT:-$port_base}"
HTTP_PORT="${GIT_MIRROR_HTTP_PORT:-$((port_base + 1))}"

die() { printf 'error: %s\n' "$1" >&2; [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2; exit 1; }

# What the Dockerfile fetches from GitHub, as mirror paths: OWNER/NAME.git and OWNER/NAME-COMMIT.zip.
needed() {
  grep -o 'https://github\.com/[A-Za-z0-9._/-]*' "$DOCKERFILE" | sed 's|^https://github\.com/||' | sort -u |
    sed -E 's|^([^/]+/[^/]+)/archive/([0-9a-f]+)\.zip$|\1-\2.zip|' | grep -E '\.(git|zip)$'
}

# The first mirror folder that holds PATH, or nothing.
find_in_mirrors() {
  local root
  local IFS=:
  for root in $MIRRORS; do
    [ -e "$root/$1" ] && { printf '%s\n' "$root/$1"; return 0; }
  done
  return 1
}

missing() {
  local path
  for path in $(needed); do find_in_mirrors "$path" >/dev/null || printf '%s\n' "$path"; done
}

check() {
  local absent
  absent="$(missing)"
  if [ -n "$absent" ]; then
    printf '%s mirrors: %s lack %s\n' "$IMAGE" "$MIRRORS" "$(paste -sd' ' <<<"$absent")" >&2
    return 3
  fi
}

# A writable copy of each needed repository: the shared mirrors are read-only, may lack the
# refs/ folder git needs to see a repository, and must allow filtered, by-commit fetches.
assemble() {
  local path source
  rm -rf "$SERVED"
  mkdir -p "$SERVED"
  for path in $(needed); do
    source="$(find_in_mirrors "$path")"
    mkdir -p "$SERVED/$(dirname "$path")"
    cp -R "$source" "$SERVED/$path"
    chmod -R u+w "$SERVED/$path"
    case "$path" in
      *.git)
        mkdir -p "$SERVED/$path/refs/heads" "$SERVED/$path/refs/tags"
        git --git-dir="$SERVED/$path" config uploadpack.allowFilter true
        git --git-dir="$SERVED/$path" config uploadpack.allowAnySHA1InWant true
        git --git-dir="$SERVED/$path" rev-parse --verify --quiet HEAD >/dev/null ||
          die "$source is not a git repository git can read" "a bare repository with a HEAD commit";;
    esac
  done
}

stop() {
  local pid_file
  for pid_file in "$SERVED"/.git-daemon.pid "$SERVED"/.http.pid; do
    [ -f "$pid_file" ] || continue
    kill "$(cat "$pid_file")" 2>/dev/null || true
    rm -f "$pid_file"
  done
}

wait_for_port() {
  local _
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  die "$2 did not listen on 127.0.0.1:$1" "is the port taken? set ${3}=another port"
}

start() {
  check || exit 3
  stop
  assemble
  git daemon --listen=127.0.0.1 --port="$GIT_PORT" --base-path="$SERVED" --export-all --reuseaddr \
    --detach --pid-file="$SERVED/.git-daemon.pid" "$SERVED"
  nohup python3 -m http.server --bind 127.0.0.1 --directory "$SERVED" "$HTTP_PORT" \
    >"$SERVED/.http.log" 2>&1 &
  echo $! >"$SERVED/.http.pid"
  wait_for_port "$GIT_PORT" "git daemon" GIT_MIRROR_PORT
  wait_for_port "$HTTP_PORT" "the archive server" GIT_MIRROR_HTTP_PORT
  local clip
  clip="$(needed | grep '\.zip$' | head -n 1 || true)"
  printf 'serving %s on git://127.0.0.1:%s and http://127.0.0.1:%s\n' "$SERVED" "$GIT_PORT" "$HTTP_PORT" >&2
  printf -- '--build-arg GIT_MIRROR=git://127.0.0.1:%s' "$GIT_PORT"
  [ -z "$clip" ] || printf -- ' --build-arg CLIP_PACKAGE=http://127.0.0.1:%s/%s' "$HTTP_PORT" "$clip"
  printf '\n'
}

case "${1:-}" in
  check) check ;;
  start) start ;;
  stop) stop ;;
  needed) needed ;;
  *) die "usage: git_mirror.sh check|start|stop|needed" ;;
esac
