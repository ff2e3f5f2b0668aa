/// \file
/// \brief Which device system this translation unit is compiled for: CUDA (nvcc, a GPU) or
/// Thrust's OpenMP system (g++, the device code path run on the host).
///
/// The CMake target diffpm::device sets what is needed (cmake/ and README.md): in a `cuda`
/// build, .cu files compiled by nvcc; in an `omp` build, THRUST_DEVICE_SYSTEM =
/// THRUST_DEVICE_SYSTEM_OMP and the toolkit's CCCL headers on the include path. Both systems run
/// the same kernel source (the DIFFPM_HOST_DEVICE functions and lambdas handed to
/// backend::for_each_index); only allocation, copies, atomics and the FFT differ, and those sit
/// behind the functions of this folder.
#pragma once

#include <thrust/version.h>

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#if !defined(__CUDACC__)
#error \
    "diffpm's CUDA device backend must be compiled by nvcc (a .cu file); for the host emulation define THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP (the diffpm::device target of an omp build does)"
#endif
#define DIFFPM_DEVICE_CUDA 1
#elif THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
#define DIFFPM_DEVICE_OMP 1
#else
#error "diffpm's device backend supports THRUST_DEVICE_SYSTEM CUDA or OMP"
#endif

namespace diffpm::device {

/// "cuda" or "omp (host emulation)": for logs and benchmark tables.
inline const char* system_name() {
#if defined(DIFFPM_DEVICE_CUDA)
  return "cuda";
#else
  return "omp (host emulation of the device path)";
#endif
}

}  // namespace diffpm::device
