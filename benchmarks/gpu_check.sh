#!/usr/bin/env bash
# GPU check of distributed training: mirrored training of the digits example on this machine's GPUs.
#
#   benchmarks/gpu_check.sh [VENV_DIR]        (default VENV_DIR: .venv-gpu, in the repository root)
#
# Makes a venv, installs tfspec with its runtime extra plus TensorFlow's CUDA wheels at the pinned
# TensorFlow version (tensorflow[and-cuda]), then runs benchmarks/gpu_check.py, which prints the GPUs,
# the replicas of a real `kind: mirrored` plan run, its test accuracy and examples/s. Extra pip options
# (a local wheel folder on a machine without the internet, for instance) go in PIP_OPTIONS:
#   PIP_OPTIONS="--no-index --find-links /wheels" benchmarks/gpu_check.sh
# Exit status: that of gpu_check.py (1 when no GPU is used).
set -euo pipefail

cd "$(dirname "$0")/.."
venv="${1:-.venv-gpu}"
python="${PYTHON:-python3}"
read -r -a pip_options <<< "${PIP_OPTIONS:-}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
tf_version="$("$venv/bin/python" - <<'PY'
import re, tomllib
with open("pyproject.toml", "rb") as f:
    extra = tomllib.load(f)["project"]["optional-dependencies"]["runtime"]
print(next(re.sub(r"^tensorflow==", "", d) for d in extra if d.startswith("tensorflow==")))
PY
)"
"$venv/bin/python" -m pip install --quiet "${pip_options[@]}" --upgrade pip
"$venv/bin/python" -m pip install --quiet "${pip_options[@]}" -e ".[runtime]" "tensorflow[and-cuda]==${tf_version}"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
exec "$venv/bin/python" benchmarks/gpu_check.py
