// Compiled by nvcc: proves that the public headers, and everything they include (Eigen, FFTW,
// the standard library), are accepted by the CUDA compiler. Also provides the trivial kernel
// that test_device.cu launches when a GPU is present.
#include <cuda_runtime.h>

#include <diffpm/diffpm.hpp>

namespace {

__global__ void fill_kernel(int* out, int n, int value) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = value + i;
}

}  // namespace

// Host-side wrapper, so that test_device.cu needs no relocatable device code (-rdc).
cudaError_t diffpm_test_launch_fill(int* device_out, int n, int value) {
  constexpr int threads = 128;
  const int blocks = (n + threads - 1) / threads;
  fill_kernel<<<blocks, threads>>>(device_out, n, value);
  return cudaGetLastError();
}
