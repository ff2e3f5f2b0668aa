// Device smoke test. Exit codes: 0 pass, 1 fail, 77 no usable CUDA device (ctest: skipped).
#include <cuda_runtime.h>

#include <cstdio>
#include <diffpm/diffpm.hpp>
#include <vector>

cudaError_t diffpm_test_launch_fill(int* device_out, int n, int value);  // compile_headers.cu

namespace {

bool check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "%s failed: %s\n", what, cudaGetErrorString(err));
    return false;
  }
  return true;
}

}  // namespace

int main() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("no CUDA device: skipping (%s)\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    return 77;
  }

  constexpr int n = 1000;
  constexpr int value = 42;
  int* device = nullptr;
  if (!check(cudaMalloc(&device, n * sizeof(int)), "cudaMalloc")) return 1;
  bool ok = check(diffpm_test_launch_fill(device, n, value), "kernel launch") &&
            check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  std::vector<int> host(n, -1);
  ok = ok && check(cudaMemcpy(host.data(), device, n * sizeof(int), cudaMemcpyDeviceToHost),
                   "cudaMemcpy");
  cudaFree(device);
  if (!ok) return 1;

  for (int i = 0; i < n; ++i) {
    if (host[i] != value + i) {
      std::fprintf(stderr, "wrong result at %d: %d != %d\n", i, host[i], value + i);
      return 1;
    }
  }
  std::printf("CUDA device smoke test passed on %d device(s)\n", count);
  return 0;
}
