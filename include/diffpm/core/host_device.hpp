/// \file
/// \brief DIFFPM_HOST_DEVICE marks inline functions that both the CPU and the CUDA backend call.
#pragma once

#if defined(__CUDACC__)
#define DIFFPM_HOST_DEVICE __host__ __device__
#else
#define DIFFPM_HOST_DEVICE
#endif

/// DIFFPM_LAMBDA marks the lambdas that kernels hand to backend::for_each_index: __host__
/// __device__ when nvcc compiles the device backend (diffpm::device, which also passes nvcc the
/// --extended-lambda these need), nothing otherwise, so that a .cu file that includes diffpm
/// for the CPU alone compiles without that flag.
#if defined(__CUDACC__) && defined(DIFFPM_WITH_DEVICE)
#define DIFFPM_LAMBDA __host__ __device__
#else
#define DIFFPM_LAMBDA
#endif
