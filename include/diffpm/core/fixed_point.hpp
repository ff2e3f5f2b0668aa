/// \file
/// \brief 64-bit fixed-point accumulation: scatter-adds whose result does not depend on the order
/// of the terms, so a paint gives the same bits on every thread count and every backend.
///
/// Floating-point addition is not associative, so a scatter-add done by many threads (or by a
/// GPU's atomics) in whatever order they arrive gives a result that changes from run to run.
/// Integer addition is associative (also modulo 2^64), so each term is rounded once to an
/// integer multiple of 1 / scale, the integers are summed in any order, and the sum is converted
/// back once. docs/design.md ("Deterministic scatter") gives the derivation of the bounds below.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#if !defined(__CUDA_ARCH__) && (defined(__x86_64__) || defined(_M_X64))
#include <emmintrin.h>
#endif

#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"

namespace diffpm::fixed_point {

/// The accumulator type: a term t is stored as llrint(t * scale).
using Accumulator = long long;
static_assert(sizeof(Accumulator) == 8, "fixed-point accumulation needs 64-bit integers");

/// The scale of a scatter-add and its inverse, both powers of two (so t * scale and
/// v * inverse are exact in double, away from overflow and underflow).
struct Scale {
  double scale = 1.0;
  double inverse = 1.0;
};

/// The scale for a scatter of `n_terms` terms (one per particle, say) whose contributions to
/// all cells together are bounded in magnitude by `max_term_magnitude` each: for a CIC paint of
/// weight w_p that is |w_p| (the 8 weights sum to 1), so the bound on the sum over all
/// particles is B = n_terms * max_p |w_p|, whatever the clustering.
///
/// scale = 2^(62 - e) with B < 2^e: any cell's sum stays below 2^62 in magnitude plus the
/// rounding of its terms (at most 1/2 each), far from 2^63. A term is stored with an absolute
/// error of at most 1 / (2 scale) <= 2^-62 B: relative to the largest weight, 2^-62 n_terms,
/// for instance 2^-41 = 4.5e-13 at 2^21 particles (double: 2^11 = 2048 ulp of a unit weight;
/// float: far below one ulp).
///
/// B is formed in double on the host from an exact maximum, so every backend gets the same
/// scale for the same inputs. Throws InvalidArgument naming `what` if the bound is not finite.
inline Scale scale_for(std::size_t n_terms, double max_term_magnitude, const char* what) {
  const double bound = double(n_terms) * max_term_magnitude;
  if (!std::isfinite(bound) || bound < 0) {
    throw InvalidArgument(std::string(what) + ": the weights of a fixed-point scatter must be " +
                          "finite (largest magnitude " + format_number(max_term_magnitude) +
                          " for " + std::to_string(n_terms) + " terms)");
  }
  int e = 0;
  if (bound > 0) std::frexp(bound, &e);  // bound = f 2^e, f in [0.5, 1): bound < 2^e
  // Keep the scale and its inverse normal doubles: a bound below 2^-900 (or none at all)
  // takes scale 2^962, which still resolves every term the bound allows.
  if (e < -900) e = -900;
  Scale s;
  s.scale = std::ldexp(1.0, 62 - e);
  s.inverse = std::ldexp(1.0, e - 62);
  return s;
}

/// t rounded to the nearest multiple of 1 / scale (ties to even), as an integer. The same
/// rounding on the host (llrint in the default rounding mode) and on a CUDA device.
DIFFPM_HOST_DEVICE inline Accumulator to_fixed(double t, double scale) {
#if defined(__CUDA_ARCH__)
  return __double2ll_rn(t * scale);
#elif defined(__x86_64__) || defined(_M_X64)
  // cvtsd2si rounds in the SSE rounding mode (nearest, ties to even, by default): llrint's
  // result, out-of-range values included (both give INT64_MIN), without the library call
  // that llrint costs unless the caller compiles with -fno-math-errno.
  return _mm_cvtsd_si64(_mm_set_sd(t * scale));
#else
  return std::llrint(t * scale);
#endif
}

/// The value of an accumulated sum, in double (exact up to the int64 -> double rounding of
/// sums beyond 2^53, the same on every backend).
DIFFPM_HOST_DEVICE inline double from_fixed(Accumulator v, double inverse) {
  return double(v) * inverse;
}

}  // namespace diffpm::fixed_point
