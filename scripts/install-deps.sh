#!/bin/sh
# Install the external programs jincache's tests and tools need, from Debian packages, only when
# their binaries are missing. Idempotent: a second run does nothing (and prints nothing).
#
#   scripts/install-deps.sh              # everything: etcd, redis, chromium, netns, tls, python
#   scripts/install-deps.sh etcd         # a subset; any of: etcd redis chromium netns tls python
#
# tls: `openssl` (the tests make their own CA and certificates) and `curl` (a real HTTPS client).
# python: Debian's python3 with python3-redis (redis-py), run as /usr/bin/python3.
# netns: what the namespaced test hosts (test/netns/) use: `ip` (iproute2) for namespaces and
# veth pairs, `nft` (nftables) for the kernel's packet drops, `faketime` for one node's clock skew.
#
# Why apt: the machines only reach Debian mirrors and the npm registry, and the Debian builds are
# the versions the measurements in ETCD-NOTES were taken with (etcd 3.4).
set -eu

usage() {
  echo "usage: $0 [etcd|redis|chromium|netns|tls|python]..." >&2
  exit 2
}

if [ "$#" -eq 0 ]; then
  set -- etcd redis chromium netns tls python
fi

# Collect the packages whose binaries are missing.
missing=""
for dep in "$@"; do
  case "$dep" in
    etcd)
      [ -x /usr/bin/etcd ] || missing="$missing etcd-server"
      [ -x /usr/bin/etcdctl ] || missing="$missing etcd-client"
      ;;
    redis)
      [ -x /usr/bin/redis-server ] || missing="$missing redis-server"
      { [ -x /usr/bin/redis-cli ] && [ -x /usr/bin/redis-benchmark ]; } || missing="$missing redis-tools"
      ;;
    chromium)
      [ -x /usr/bin/chromium ] || missing="$missing chromium"
      ;;
    netns)
      [ -x /usr/sbin/ip ] || [ -x /bin/ip ] || missing="$missing iproute2"
      [ -x /usr/sbin/nft ] || missing="$missing nftables"
      [ -x /usr/bin/faketime ] || missing="$missing faketime"
      ;;
    tls)
      [ -x /usr/bin/openssl ] || missing="$missing openssl"
      [ -x /usr/bin/curl ] || missing="$missing curl"
      ;;
    python)
      { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import redis' 2>/dev/null; } || missing="$missing python3 python3-redis"
      ;;
    -h|--help) usage ;;
    *)
      echo "install-deps: unknown dependency '$dep' (expected etcd, redis, chromium, netns, tls or python)" >&2
      exit 2
      ;;
  esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "install-deps: need root to install:$missing" >&2
    exit 1
  fi
else
  SUDO=""
fi

log=$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX")
trap 'rm -f "$log"' EXIT

# Serialise concurrent runs (several test files may call this at once): dpkg takes its own lock,
# but two runs racing would make the loser fail instead of waiting.
lock="${TMPDIR:-/tmp}/jincache-install-deps.lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$lock"
  flock -w 600 9 || { echo "install-deps: timed out waiting for $lock" >&2; exit 1; }
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update >"$log" 2>&1; then
  echo "install-deps: apt-get update failed:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! $SUDO apt-get install -y --no-install-recommends $missing >"$log" 2>&1; then
  echo "install-deps: apt-get install$missing failed:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi

# Re-check: a package may install but not provide the expected path.
for dep in "$@"; do
  case "$dep" in
    etcd) bins="/usr/bin/etcd /usr/bin/etcdctl" ;;
    redis) bins="/usr/bin/redis-server /usr/bin/redis-cli /usr/bin/redis-benchmark" ;;
    chromium) bins="/usr/bin/chromium" ;;
    netns) bins="/usr/sbin/nft /usr/bin/faketime" ;;
    tls) bins="/usr/bin/openssl /usr/bin/curl" ;;
    python) bins="/usr/bin/python3" ;;
  esac
  for b in $bins; do
    if [ ! -x "$b" ]; then
      echo "install-deps: installed$missing but $b is still missing" >&2
      exit 1
    fi
  done
done
