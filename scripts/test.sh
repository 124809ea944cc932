#!/usr/bin/env bash
# `make test`: every tier of the suite, each in the venv it is about, then a summary of what ran and how long
# each step took. A failing tier does not stop the next one; the exit status is non-zero if any step failed.
#   1. set-up of .venv (scripts/bootstrap.sh; seconds when it is already complete)
#   2. the whole suite in .venv (slow end-to-end tests included)
#   3. set-up of .venv-runtime (the runtime alone: no torch, no ultralytics)
#   4. core and node tests in .venv-runtime, on ONNX models, torch absent
# KD_TEST_SEED_SHIFT=N shifts every training seed of the suite (test/seeds.py).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RT_VENV=${RT_VENV:-.venv-runtime}
export YOLO_AUTOINSTALL=false YOLO_OFFLINE=1
declare -a NAMES=() SECS=() RESULTS=()
status=0

step() {  # step NAME COMMAND...: run, time and record it
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  "$@"
  rc=$?
  NAMES+=("$name") SECS+=($(($(date +%s) - t0)))
  if [ "$rc" -eq 0 ]; then RESULTS+=("passed"); else RESULTS+=("FAILED (exit $rc)"); status=1; fi
  return "$rc"
}

if step "set-up .venv" env VENV="$VENV" ./scripts/bootstrap.sh; then
  step "suite in .venv (all tiers)" "$VENV/bin/python" -m pytest -q --timeout=900
fi
if step "set-up .venv-runtime" env PROFILE=runtime VENV="$RT_VENV" ./scripts/bootstrap.sh; then
  step "core + node tests in .venv-runtime" env KD_RUNTIME_VENV=1 "$RT_VENV/bin/python" -m pytest -q \
    -m "not slow" --timeout=300 test/core test/nodes
fi

total=0
echo
echo "make test: what ran (seed shift ${KD_TEST_SEED_SHIFT:-0}, $(nproc) cores)"
for i in "${!NAMES[@]}"; do
  printf '  %-38s %6ss  %s\n' "${NAMES[$i]}" "${SECS[$i]}" "${RESULTS[$i]}"
  total=$((total + SECS[i]))
done
printf '  %-38s %6ss\n' "total" "$total"
exit "$status"
