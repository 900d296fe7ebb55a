#!/usr/bin/env bash
# Installs the system packages Aftertrace's local stack and tests need:
# ClickHouse (server + client) and PostgreSQL, from Debian's archive.
#
# Idempotent: installs only what is missing, runs `apt-get update` once and
# only when something is missing, and is a fast no-op otherwise. It never
# starts or enables the system-wide services: our own code (internal/localstack)
# starts private instances in a scratch directory.
#
# Used by `make run`, `make test` and `.ci/run`.
# Set AFTERTRACE_SKIP_DEPS=1 to skip it entirely (e.g. on a non-Debian host
# where you installed ClickHouse/PostgreSQL yourself).
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*" >&2; }

if [[ "${AFTERTRACE_SKIP_DEPS:-0}" == "1" ]]; then
  log "AFTERTRACE_SKIP_DEPS=1, skipping"
  exit 0
fi

# pkg_installed NAME: true if dpkg knows NAME as fully installed.
pkg_installed() {
  command -v dpkg-query >/dev/null 2>&1 || return 1
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

have_cmd() {
  local c
  for c in "$@"; do
    if command -v "$c" >/dev/null 2>&1 || [[ -x "$c" ]]; then
      return 0
    fi
  done
  return 1
}

# present NAME: the package, or an equivalent install of what it provides.
present() {
  pkg_installed "$1" && return 0
  case "$1" in
    clickhouse-server)
      # Debian's classic binary, or the upstream single "clickhouse" binary.
      have_cmd clickhouse-server /usr/sbin/clickhouse-server /usr/bin/clickhouse-server clickhouse /usr/bin/clickhouse ;;
    clickhouse-client)
      have_cmd clickhouse-client /usr/bin/clickhouse-client clickhouse /usr/bin/clickhouse ;;
    postgresql)
      # Debian puts the server binaries in /usr/lib/postgresql/<major>/bin.
      local d
      for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/postgres" && -x "$d/initdb" ]] && return 0
      done
      return 1 ;;
    *)
      return 1 ;;
  esac
}

# Extra packages may be named as arguments (make test adds docker-compose,
# to validate docker-compose.yml).
wanted=(clickhouse-server clickhouse-client postgresql "$@")
missing=()
for p in "${wanted[@]}"; do
  present "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "all present (${wanted[*]})"
  exit 0
fi

log "missing: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  log "apt-get not found: install ${missing[*]} by hand (or set AFTERTRACE_SKIP_DEPS=1)"
  exit 1
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    log "not root and sudo is not available: as root run: apt-get install ${missing[*]}"
    exit 1
  fi
fi

# Keep maintainer scripts from starting the system-wide services: a
# policy-rc.d that denies every action (exit 101), only if none exists,
# removed again on exit.
policy=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
  if [[ $added_policy -eq 1 ]]; then
    "${SUDO[@]}" rm -f "$policy" || true
  fi
}
trap cleanup EXIT
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\n# added by aftertrace install-deps.sh for the duration of an install\nexit 101\n' \
    | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 0755 "$policy"
  added_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log "apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -qq

log "installing: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  present "$p" || still+=("$p")
done
if [[ ${#still[@]} -gt 0 ]]; then
  log "still missing after install: ${still[*]}"
  exit 1
fi
log "installed: ${missing[*]}"
