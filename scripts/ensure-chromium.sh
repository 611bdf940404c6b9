#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests, only when it is missing, and fontconfig's
# fc-list, with which tests/browser/test_icons.py checks that its Chromium has no emoji font.
set -euo pipefail
if [ -x /usr/bin/chromium ] && command -v fc-list >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium or fc-list is missing and installing them needs root: run 'sudo apt-get install -y chromium fontconfig'." >&2
  exit 1
fi
echo "Installing Chromium from Debian (once, about 30 s)..."
export DEBIAN_FRONTEND=noninteractive
# Another install (a second `make`, unattended upgrades) may hold dpkg's lock: wait for it.
APT_WAIT="-o DPkg::Lock::Timeout=600"
apt-get $APT_WAIT update -qq
apt-get $APT_WAIT install -y -qq chromium fontconfig >/dev/null
/usr/bin/chromium --version
