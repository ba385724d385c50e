#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# gnome-keyring + dbus: the real Secret Service the keyring tests run against.
set -euo pipefail
# chromium: the real browser the UI tests drive through Playwright (never `playwright install`).
packages=(gnome-keyring dbus dbus-bin chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing system packages: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
