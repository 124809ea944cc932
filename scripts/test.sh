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
MAKE_STEP=(make --no-print-directory)
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

# each step is a make target; -o skips the set-up a step depends on, which the step before has just done
if step "set-up .venv" "${MAKE_STEP[@]}" venv; then
  step "suite in .venv (all tiers)" "${MAKE_STEP[@]}" -o venv test-suite
fi
if step "set-up .venv-runtime" "${MAKE_STEP[@]}" venv-runtime; then
  step "core + node tests in .venv-runtime" "${MAKE_STEP[@]}" -o venv-runtime test-runtime
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
