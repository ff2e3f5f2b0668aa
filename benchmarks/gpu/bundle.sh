#!/usr/bin/env bash
# Builds, on a machine with the CUDA toolkit and diffpm's dependencies but no GPU, the GPU tests
# and the device benchmark for Hopper (sm_90: H100, H200) into a self-contained folder, so that a
# GPU machine without those dependencies runs them: DIFFPM_GPU_BUNDLE=<folder>
# benchmarks/gpu/run.sh. The folder holds bin/ and the shared libraries the binaries need that a
# CUDA machine may lack (FFTW, OpenMP's runtime); the C++ runtime is linked statically, cuFFT and
# the driver come from the GPU machine's toolkit.
#
#   benchmarks/gpu/bundle.sh [folder] [build-dir]     (defaults .gpu-bundle, build-gpu-bundle)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bundle="${1:-.gpu-bundle}"
build="${2:-build-gpu-bundle}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDIFFPM_DEVICE=cuda \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DDIFFPM_BUILD_EXAMPLES=OFF -DDIFFPM_BUILD_BENCHMARKS=ON \
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" > /dev/null
cmake --build "$build" --target diffpm_cuda_tests bench_device --parallel "$(nproc)"
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
cp "$build/tests/diffpm_cuda_tests" "$build/benchmarks/gpu/bench_device" "$bundle/bin/"
for exe in "$bundle"/bin/*; do
  ldd "$exe" | awk '/=> \// {print $3}' | grep -E 'libfftw3|libgomp' | while read -r lib; do
    cp -L "$lib" "$bundle/lib/"
  done
done
du -sh "$bundle"
