#!/usr/bin/env bash
# Installs Debian's Janus WebRTC Server (the `janus` binary and its VideoRoom plugin), the SFU of
# channel calls, for `make run` and `make test`, only when it is missing.
set -euo pipefail
if command -v janus >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Janus is missing and installing it needs root: run 'sudo apt-get install -y janus'." >&2
  exit 1
fi
echo "Installing Janus from Debian (once, a few seconds)..."
export DEBIAN_FRONTEND=noninteractive
# Another install (a second `make`, unattended upgrades) may hold dpkg's lock: wait for it.
APT_WAIT="-o DPkg::Lock::Timeout=600"
apt-get $APT_WAIT update -qq
# --no-install-recommends: the server and its plugins, not the demo web pages.
apt-get $APT_WAIT install -y -qq --no-install-recommends janus >/dev/null
command -v janus
