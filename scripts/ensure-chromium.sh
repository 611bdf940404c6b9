#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests, only when it is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing and installing it needs root: run 'sudo apt-get install -y chromium'." >&2
  exit 1
fi
echo "Installing Chromium from Debian (once, about 30 s)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
