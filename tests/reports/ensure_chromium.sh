#!/usr/bin/env bash
# Installs Debian's chromium for the headless-browser report test, only when it is missing.
# Idempotent: a machine that already has /usr/bin/chromium returns at once. The Makefile calls it before tests.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
