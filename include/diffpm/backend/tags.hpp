/// \file
/// \brief Backend tags: empty types that select where a kernel runs and where its data lives.
#pragma once

#include <string>

#include "diffpm/core/error.hpp"

namespace diffpm {

/// Host CPU: FFTW3 and OpenMP loops over host memory (backend/cpu/).
struct Cpu {};

/// The device backend (backend/device/): Thrust/CUB/libcu++ algorithms over device memory, with
/// cuFFT on an NVIDIA GPU (a `cuda` build) or, in an `omp` build, the same device code through
/// Thrust's OpenMP system and FFTW, on the host. Which of the two is compiled is fixed by the
/// build (backend/device/system.hpp); the tag names the code path.
struct Cuda {};

/// The same choice at run time, for configurations and command lines (`--backend cpu|cuda`):
/// cuda runs the device code path, on the GPU in a cuda build and on the host in an omp build.
enum class BackendKind { cpu, cuda };

inline const char* to_string(BackendKind b) { return b == BackendKind::cuda ? "cuda" : "cpu"; }

/// "cpu" or "cuda"; InvalidArgument naming the value otherwise.
inline BackendKind parse_backend(const std::string& name) {
  if (name == "cpu") return BackendKind::cpu;
  if (name == "cuda") return BackendKind::cuda;
  throw InvalidArgument("backend '" + name + "' (must be cpu or cuda)");
}

/// Whether this translation unit was compiled with the device backend (linked to
/// diffpm::device): otherwise BackendKind::cuda is refused with a message saying so.
constexpr bool device_backend_compiled() {
#if defined(DIFFPM_WITH_DEVICE)
  return true;
#else
  return false;
#endif
}

}  // namespace diffpm
