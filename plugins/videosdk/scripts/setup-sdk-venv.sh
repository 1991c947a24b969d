#!/usr/bin/env bash
# Creates plugins/videosdk/.venv: core, this plugin with the VideoSDK SDK (the `sdk` extra) and pytest.
# The SDK pins av<17, websockets<=15.0.1, requests<2.32 and pycryptodome==3.20.0; installing it into the
# shared .venv would downgrade av and requests under the other plugins, so it gets a venv of its own.
# Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
PYTHON=${PYTHON:-python3}
[ -x "$here/.venv/bin/python" ] || "$PYTHON" -m venv "$here/.venv"
"$here/.venv/bin/python" -m pip install -q --upgrade pip
"$here/.venv/bin/python" -m pip install -q -e "$root/core[testing]" -e "$here[sdk]"
echo "setup-sdk-venv: $here/.venv has videosdk $("$here/.venv/bin/python" -c 'import videosdk; print(videosdk.__version__)')"
