#!/usr/bin/env bash
# Installs Debian's coturn (the `turnserver` binary) for the TURN relay call test and for
# `guilds run` with a local TURN server, only when it is missing.
set -euo pipefail
if command -v turnserver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "coturn is missing and installing it needs root: run 'sudo apt-get install -y coturn'." >&2
  exit 1
fi
echo "Installing coturn from Debian (once, a few seconds)..."
export DEBIAN_FRONTEND=noninteractive
# Another install (a second `make`, unattended upgrades) may hold dpkg's lock: wait for it.
APT_WAIT="-o DPkg::Lock::Timeout=600"
apt-get $APT_WAIT update -qq
apt-get $APT_WAIT install -y -qq coturn >/dev/null
command -v turnserver
