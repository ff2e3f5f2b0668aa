#!/usr/bin/env bash
# The GPU check in one go, for a machine with an NVIDIA GPU (and for a few minutes on a lent
# one): builds the cuda configuration, runs the device test suite on the GPU, then prints the
# benchmark table (benchmarks/gpu/bench_device.cpp) for 128^3, 256^3 and 512^3 particles at
# B = 1 and 2. Aimed at under 8 minutes on one H100 or H200.
#
#   benchmarks/gpu/run.sh [build-dir]        (default build-gpu)
#
# Environment:
#   DIFFPM_GPU_BUNDLE=dir   skip the build and run the binaries of a bundle made on another
#                           machine by benchmarks/gpu/bundle.sh (dir/bin, dir/lib), for a GPU
#                           machine without diffpm's build dependencies
#   DIFFPM_GPU_SIZES        particle counts per side (default 128,256,512)
#   DIFFPM_GPU_OUT          a folder for the logs (test output, table)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
start=$(date +%s)
build="${1:-build-gpu}"
sizes="${DIFFPM_GPU_SIZES:-128,256,512}"
out="${DIFFPM_GPU_OUT:-$build}"

elapsed() { echo "[$(($(date +%s) - start)) s] $*"; }

if ! nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; then
  echo "run.sh: nvidia-smi found no GPU; this script needs one (CPU machines run the same device" \
       "code through the omp build: ctest -L device)" >&2
  exit 1
fi

if [[ -n "${DIFFPM_GPU_BUNDLE:-}" ]]; then
  tests="$DIFFPM_GPU_BUNDLE/bin/diffpm_cuda_tests"
  bench="$DIFFPM_GPU_BUNDLE/bin/bench_device"
  export LD_LIBRARY_PATH="$DIFFPM_GPU_BUNDLE/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  mkdir -p "$out"
else
  elapsed "configuring (cuda, this GPU's architecture only)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDIFFPM_DEVICE=cuda \
    -DCMAKE_CUDA_ARCHITECTURES=native -DDIFFPM_BUILD_EXAMPLES=OFF -DDIFFPM_BUILD_BENCHMARKS=ON \
    > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
  elapsed "building the GPU tests and the benchmark"
  cmake --build "$build" --target diffpm_cuda_tests bench_device --parallel "$(nproc)"
  tests="$build/tests/diffpm_cuda_tests"
  bench="$build/benchmarks/gpu/bench_device"
fi

elapsed "GPU tests"
status=0
"$tests" 2>&1 | tee "$out/gpu_tests.log" || status=$?
elapsed "GPU tests finished with status $status"

elapsed "benchmark (sizes $sizes)"
"$bench" --sizes "$sizes" 2>&1 | tee "$out/gpu_table.md"
elapsed "done"
exit "$status"
