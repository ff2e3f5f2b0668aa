/// \file
/// \brief The launch primitives of every backend compiled into this translation unit: Cpu
/// always (backend/cpu/parallel.hpp), Cuda when the diffpm::device target is linked
/// (DIFFPM_WITH_DEVICE; backend/device/parallel.hpp). Kernels written once include this.
#pragma once

#include "diffpm/backend/cpu/parallel.hpp"
#if defined(DIFFPM_WITH_DEVICE)
#include "diffpm/backend/device/parallel.hpp"
#endif
