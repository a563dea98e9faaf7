#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing (tests and `make run`
# start their own redis-server processes; nothing here starts a service).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server not found: installing Debian's redis-server package" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
# Keep the package from starting a system service: tests start their own.
policy=/usr/sbin/policy-rc.d
created=""
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created=1
fi
cleanup() { if [[ -n $created ]]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null
echo "installed $(redis-server --version)" >&2
