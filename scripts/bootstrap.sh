#!/usr/bin/env bash
# Create, check or repair the project's virtual environment (.venv). Idempotent: when the venv is
# complete and matches the pinned inputs, this returns in a few seconds without touching anything.
#
# Steps on a fresh machine: python3.11 -m venv; pip install the fully pinned lock (--no-deps, so only
# the headless OpenCV 4.x lands); build each message package of interfaces/ (vision_msgs- and
# autoware_perception_msgs-compatible) into the venv when importing it fails; pip install -e . (the package).
#
# PROFILE=runtime VENV=.venv-runtime builds the runtime-only venv the same way from
# requirements/runtime-lock.txt: the nodes on exported models, no torch, no ultralytics (and checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-full}
case "$PROFILE" in
  full) VENV=${VENV:-.venv}; LOCK=requirements/lock.txt ;;
  runtime) VENV=${VENV:-.venv-runtime}; LOCK=requirements/runtime-lock.txt ;;
  *) echo "error: PROFILE must be 'full' or 'runtime', got '$PROFILE'" >&2; exit 1 ;;
esac
STAMP="$VENV/.kd_bootstrap"
export YOLO_AUTOINSTALL=false PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[bootstrap] %s\n' "$*"; }

find_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  echo "error: Python 3.11 is required (the ROS 2 Kilted wheels are cp311); install python3.11" >&2
  return 1
}

inputs_hash() {
  cat "$LOCK" scripts/bootstrap.sh setup.py package.xml interfaces/*/CMakeLists.txt \
    interfaces/*/msg/*.msg | sha256sum | cut -d' ' -f1
}

venv_ok() {
  [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs_hash)" ] &&
    PROFILE="$PROFILE" "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.util as u, os, sys
mods = ["rclpy", "vision_msgs.msg", "autoware_perception_msgs.msg", "sensor_msgs.msg", "cv2", "rosbags",
        "kd_traffic_light", "onnxruntime", "scipy"]
absent = []
if os.environ["PROFILE"] == "full":
    mods += ["torch", "ultralytics"]
else:
    absent = ["torch", "ultralytics"]  # the point of the runtime-only venv
sys.exit(any(u.find_spec(m.split(".")[0]) is None for m in mods) or any(u.find_spec(m) for m in absent))
PY
}

build_interfaces() {  # build_interfaces <package under interfaces/> <python import that must work after>
  local pkg=$1 check=$2 py="$VENV/bin/python" prefix build
  prefix=$(cd "$VENV" && pwd)
  build="$prefix/.build/$pkg"
  log "building $pkg-compatible interfaces into the venv"
  local inc npinc
  inc=$("$py" -c 'import sysconfig; print(sysconfig.get_path("include"))')
  npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
  # The exported CMake files of the wheels hard-code the wheel builder's Python paths: point them here.
  for f in "$prefix"/share/*/cmake/*__rosidl_generator_pyExport.cmake; do
    [ -f "$f" ] || continue
    sed -i -E "s#/opt/python/cp311-cp311/include/python3\.11#${inc}#g; \
s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#${npinc}#g" "$f"
  done
  rm -rf "$build"; mkdir -p "$build"
  AMENT_PREFIX_PATH="$prefix" CMAKE_PREFIX_PATH="$prefix" PATH="$prefix/bin:$PATH" \
    cmake -S "interfaces/$pkg" -B "$build" -G Ninja -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$prefix/bin/python" >"$build.log" 2>&1 ||
    { tail -30 "$build.log"; echo "error: configuring $pkg failed; full log in $build.log" >&2; return 1; }
  PATH="$prefix/bin:$PATH" cmake --build "$build" --target install -j2 >>"$build.log" 2>&1 ||
    { tail -30 "$build.log"; echo "error: building $pkg failed; full log in $build.log" >&2; return 1; }
  "$py" -c "$check" || { echo "error: $pkg built but does not import" >&2; return 1; }
}

install_all() {
  local py="$VENV/bin/python"
  log "installing the pinned requirements ($LOCK)"
  "$py" -m pip install -q --no-deps -r "$LOCK"
  if ! "$py" -c 'import vision_msgs.msg' 2>/dev/null; then
    build_interfaces vision_msgs 'from vision_msgs.msg import Detection2DArray, LabelInfo'
  fi
  if ! "$py" -c 'import autoware_perception_msgs.msg' 2>/dev/null; then
    build_interfaces autoware_perception_msgs 'from autoware_perception_msgs.msg import TrafficLightGroupArray'
  fi
  log "installing kd_traffic_light (editable)"
  "$py" -m pip install -q --no-deps --no-build-isolation -e .
}

if venv_ok; then
  log "$VENV is complete (delete it or run 'make venv-rebuild' to start over)"
  exit 0
fi

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    2>/dev/null; then
  log "$VENV exists but is incomplete or out of date: repairing"
  if ! install_all; then
    log "repair failed: rebuilding $VENV from nothing"
    rm -rf "$VENV"
  fi
else
  [ -e "$VENV" ] && { log "$VENV is broken (no working Python 3.11): rebuilding"; rm -rf "$VENV"; }
fi

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python)
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
  install_all
fi
inputs_hash >"$STAMP"
venv_ok || { echo "error: $VENV still incomplete after set-up" >&2; exit 1; }
log "$VENV ready"
