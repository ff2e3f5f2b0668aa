/// \file
/// \brief Backend tags: empty types that select the FFT, allocation and scatter strategy.
#pragma once

namespace diffpm {

/// Host CPU: FFTW3 (threads) and OpenMP.
struct Cpu {};
/// NVIDIA GPU: cuFFT and CUDA kernels (backend/cuda, behind DIFFPM_ENABLE_CUDA).
struct Cuda {};

}  // namespace diffpm
