#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the console's browser tests
# (test/console) drive it headless through the DevTools protocol (chromedp).
# HTQ_CHROMIUM, when set, names a browser to use instead and nothing is
# installed.
set -euo pipefail
if [[ -n ${HTQ_CHROMIUM:-} ]]; then
  [[ -x $HTQ_CHROMIUM ]] || { echo "HTQ_CHROMIUM=$HTQ_CHROMIUM is not an executable" >&2; exit 1; }
  exit 0
fi
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "chromium not found: installing Debian's chromium package" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
echo "installed $(chromium --version 2>/dev/null || echo chromium)" >&2
