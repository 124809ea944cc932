# kd_traffic_light: every target bootstraps .venv first (a few seconds when it is already complete).
VENV ?= .venv
PY := $(VENV)/bin/python
RT_VENV ?= .venv-runtime
export YOLO_AUTOINSTALL := false
export YOLO_OFFLINE := 1

.PHONY: venv venv-rebuild demo test test-suite test-fast bench lint clean venv-runtime test-runtime

venv:  ## create or repair .venv (idempotent)
	@VENV=$(VENV) ./scripts/bootstrap.sh

venv-rebuild:  ## delete .venv and build it from nothing
	rm -rf $(VENV)
	@VENV=$(VENV) ./scripts/bootstrap.sh

demo: venv  ## the end-to-end demo on synthetic DTLD-format data (CPU); writes runs/demo/REPORT.md
	$(PY) -m training.demo --out runs/demo

test:  ## set up both venvs; the whole suite, then the core and node tests in .venv-runtime; the times of each step
	@./scripts/test.sh

test-suite: venv  ## the whole suite in .venv, slow end-to-end tests included
	$(PY) -m pytest -q --timeout=900

test-fast: venv  ## the suite without the slow end-to-end tests
	$(PY) -m pytest -q -m "not slow" --timeout=300

bench: venv  ## every benchmark's quick profile; summary in runs/bench/SUMMARY.md
	$(PY) benchmarks/run_all.py

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs build install log .pytest_cache .ruff_cache

venv-runtime:  ## create or repair .venv-runtime: the runtime alone (no torch, no ultralytics; idempotent)
	@PROFILE=runtime VENV=$(RT_VENV) ./scripts/bootstrap.sh

test-runtime: venv-runtime  ## core and node tests (not slow) in the runtime-only venv, on ONNX models, torch absent
	KD_RUNTIME_VENV=1 $(RT_VENV)/bin/python -m pytest -q -m "not slow" --timeout=300 test/core test/nodes
