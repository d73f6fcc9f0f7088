#!/usr/bin/env bash
# Prepare what a bare GPU machine with Python and CUDA PyTorch needs to run `make test-gpu` offline: this project's
# wheel and every other package of this machine's environment (its [dev] install), as files in one folder that
# travels with the working tree. torch and CUDA's own packages are left out: the GPU machine has its own CUDA build.
# Wheels are fetched for this machine's Python version; use the same minor version there.
#
#   tools/gpu_bundle.sh [DIR]            # here, with the package registry reachable (default DIR: shared/gpu-bundle)
#   # on the GPU machine, in the repository root:
#   python -m venv .venv-gpu --system-site-packages
#   .venv-gpu/bin/pip install --no-index --find-links DIR rationalrewards pytest pytest-timeout diffusers peft trl
#   .venv-gpu/bin/python -P -m pytest -m gpu -rs tests/test_gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-shared/gpu-bundle}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
"$py" -m pip wheel -q --no-deps -w "$out" .
requirements="$(mktemp)"
"$py" -m pip freeze --exclude-editable \
  | grep -viE '^(torch|torchvision|torchaudio|triton|nvidia-|vllm|rationalrewards)([=@ ]|$)' > "$requirements"
"$py" -m pip download -q --no-deps -d "$out" -r "$requirements"
echo "bundle: $out ($(ls "$out" | wc -l) files, $(du -sh "$out" | cut -f1)); torch is the GPU machine's own"
