#!/usr/bin/env bash
# Quick-start set-up used by the README and .ci/run: install the Debian packages, then
# configure build/ in Release and build it. Extra arguments go to the configure step
# (e.g. -DDIFFPM_DEVICE=none). Parallelism follows CMAKE_BUILD_PARALLEL_LEVEL, else nproc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cmake/install-debian-deps.sh

# The CUDA toolkit's default location is usually not on PATH; use it where it is installed.
if [[ -d /usr/local/cuda/bin ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
