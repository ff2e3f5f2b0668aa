/// \file
/// \brief Integer atomic addition in device memory (libcu++'s cuda::atomic_ref), for the
/// fixed-point scatter-adds of core/fixed_point.hpp.
#pragma once

#include <cuda/atomic>

#include "diffpm/backend/device/system.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"

namespace diffpm::device {

/// *target += v, atomically with respect to every other device thread. Relaxed ordering: the
/// sums are read only after the kernel has finished. Integer addition is associative (also
/// modulo 2^64), so the final value does not depend on the order of the additions.
DIFFPM_HOST_DEVICE inline void atomic_add(fixed_point::Accumulator* target,
                                          fixed_point::Accumulator v) {
  cuda::atomic_ref<fixed_point::Accumulator, cuda::thread_scope_device>(*target).fetch_add(
      v, cuda::memory_order_relaxed);
}

}  // namespace diffpm::device
