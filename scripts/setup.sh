#!/usr/bin/env bash
# Installs everything: the Debian packages the tests need, a virtualenv in .venv with every package of
# this repo in editable mode, and the dev tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox chromium)
if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: no apt-get here; install PortAudio, PulseAudio, espeak-ng, sox and Chromium yourself" >&2
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
packages=(-e "core[testing,plot,files,mcp]")
for dir in plugins/*/; do
  [ -f "$dir/pyproject.toml" ] && packages+=(-e "$dir")
done
.venv/bin/python -m pip install -q "${packages[@]}" -r requirements-dev.txt
# plugins whose SDK pins clash with the shared venv get a venv of their own (see their README)
for script in plugins/*/scripts/setup-sdk-venv.sh; do
  [ -f "$script" ] && bash "$script"
done
echo "setup: done (.venv has: agentsession $(ls -d plugins/*/ 2>/dev/null | xargs -n1 basename | tr '\n' ' '))"
