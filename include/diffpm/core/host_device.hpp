/// \file
/// \brief DIFFPM_HOST_DEVICE marks inline functions that both the CPU and the CUDA backend call.
#pragma once

#if defined(__CUDACC__)
#define DIFFPM_HOST_DEVICE __host__ __device__
#else
#define DIFFPM_HOST_DEVICE
#endif
