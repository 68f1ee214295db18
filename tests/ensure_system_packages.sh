#!/usr/bin/env bash
# Installs the Debian packages the tests start for real, only those missing, with one `apt-get update`:
# - chromium, for the headless-browser report test (tests/reports/test_browser.py);
# - postgresql, for the trial-database tests (tests/search/postgres.py starts its own server: initdb into a
#   temp dir, a free port on 127.0.0.1), so no default cluster is created here.
# Idempotent: a machine that has both returns at once. The Makefile runs it alongside the Python install.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
command -v chromium >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
