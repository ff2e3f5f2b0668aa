/// \file
/// \brief OpenMP helpers that compile to nothing (and no -Wunknown-pragmas warning) without it.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#define DIFFPM_OMP(directive) _Pragma(#directive)
#else
#define DIFFPM_OMP(directive)
#endif

namespace diffpm {

/// Threads an OpenMP parallel region started here would use (1 without OpenMP).
inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the thread count for later parallel regions and FFT plans (no-op without OpenMP).
inline void set_threads(int n) {
#if defined(_OPENMP)
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

}  // namespace diffpm
