#!/usr/bin/env bash
# Runs every check: lint, strict typing of core and plugins, every package's tests, the quick benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# the recorder is installed but records only with AGENTSESSION_RECORD=1 (its tests set it, with a temporary
# AGENTSESSION_RECORDER_DIR): a run of the suite writes no recordings, whatever the caller's environment says
unset AGENTSESSION_RECORD
echo "== ruff";  $PY -m ruff check .
echo "== mypy --strict core"; $PY -m mypy --strict core/src/agentsession
echo "== mypy --strict plugins"; $PY -m mypy --strict plugins/*/src
# two workers, a test file at a time each (a module's fixtures run once, its tests in order): the many tests that
# wait on subprocesses, real-time file runs or a browser overlap with the CPU-bound ones (8.9 to 5.2 min here)
workers=(-n "${AGENTSESSION_TEST_WORKERS:-2}" --dist loadfile)
if ! $PY -c "import xdist" 2>/dev/null; then  # a .venv made before xdist joined requirements-dev.txt
  echo "pytest-xdist is not in .venv (./scripts/setup.sh installs it): pytest runs in one process"
  workers=()
fi
echo "== pytest"; $PY -m pytest "${workers[@]}" "$@"
for venv in plugins/*/.venv; do  # plugins with an SDK venv of their own (setup.sh made them)
  [ -x "$venv/bin/python" ] || continue
  plugin=$(dirname "$venv")
  echo "== pytest $plugin (its own venv)"; "$venv/bin/python" -m pytest "$plugin/tests" "$@"
done
echo "== bench (quick)"; $PY bench/session_overhead.py --quick; $PY bench/openai_realtime.py --quick
$PY bench/vad_cost.py --quick; $PY bench/pool.py --quick; $PY bench/scale.py --quick; $PY bench/barge_in.py --quick
$PY bench/link_cpu.py --quick; $PY bench/frame_cost.py --quick; $PY bench/frame_cost.py --quick --sessions 50
$PY bench/openai_parse.py --quick
$PY bench/gemini_parse.py --quick
