#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries for the trial-database tests, only when they are missing.
# Idempotent: a machine that already has /usr/lib/postgresql/*/bin/initdb returns at once. The tests start
# their own server (initdb into a temp dir, a free port on 127.0.0.1), so no default cluster is created here.
# The Makefile calls it before the tests.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# No 'main' cluster listening on port 5432: the tests need only the binaries.
$SUDO mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
