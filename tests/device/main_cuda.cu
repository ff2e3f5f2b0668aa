// Entry point of diffpm_cuda_tests: the device tests on a GPU. Without one it exits with 77,
// which ctest reports as "skipped" (SKIP_RETURN_CODE), saying why.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "diffpm/backend/device/memory.hpp"

int main(int argc, char* argv[]) {
  if (!diffpm::device::available()) {
    std::printf(
        "diffpm_cuda_tests: no CUDA device is available; the GPU tests are skipped "
        "(the same tests run on the host through the omp device system: "
        "diffpm_device_tests)\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
