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
/// v * inverse are exact in double, away from overflow and underflow), and those of the second
/// word of a two-word accumulation (scale_lo, inverse_lo; see `words`).
struct Scale {
  double scale = 1.0;
  double inverse = 1.0;
  double scale_lo = 1.0;
  double inverse_lo = 1.0;
};

/// How many 64-bit words a scatter of T accumulates per cell: float 1, double 2.
///
/// One word resolves a term to 2^-62 B (scale_for below): far below float's resolution, but for
/// double, 2^-62 B is 2^-41 = 4.5e-13 of the largest weight at 2^21 particles, about 2^11 ulp,
/// worse than the floating-point sum it replaces. So double scatters carry a second word: the
/// residual r = t scale - round(t scale), |r| <= 1/2, rounded again with its own scale and
/// summed in its own integers (no carries: each word has its own headroom). A term is then
/// exact to 2^-62 B 2^-(60 - log2 n), beyond double precision, and the cell's value, formed
/// from the two sums in double, is within an ulp or two of the exact sum of the rounded-to-T
/// terms (tests/particles/test_cic_fixed.cpp measures it).
template <class T>
constexpr int words = sizeof(T) >= 8 ? 2 : 1;

/// One term in fixed point: hi (= round(t scale)) and, for two-word scatters, lo.
struct Term {
  Accumulator hi = 0;
  Accumulator lo = 0;
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
  // The second word sums residuals of magnitude <= 1/2, at most 8 per term in one cell (a CIC
  // stencil's corners coincide only on meshes of one cell per side): a sum below 4 n_terms, so
  // scale_lo = 2^(62 - e_lo) with 4 n_terms < 2^e_lo keeps it below 2^62.
  int e_lo = 0;
  std::frexp(4.0 * double(n_terms > 0 ? n_terms : 1), &e_lo);
  s.scale_lo = std::ldexp(1.0, 62 - e_lo);
  s.inverse_lo = std::ldexp(1.0, e_lo - 62);
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

/// The fixed-point term of t: hi = to_fixed(t, scale) and, with Words = 2, lo = the rounded
/// residual. t scale is exact (a power of two), and so is its difference from round(t scale)
/// (they lie within 1/2 of each other; beyond 2^52, t scale is an integer and the residual 0).
template <int Words>
DIFFPM_HOST_DEVICE inline Term term(double t, const Scale& s) {
  Term r;
  r.hi = to_fixed(t, s.scale);
  if constexpr (Words == 2) r.lo = to_fixed(t * s.scale - double(r.hi), s.scale_lo);
  return r;
}

/// The value of a cell from its word sums: hi / scale + lo / (scale scale_lo), in double.
template <int Words>
DIFFPM_HOST_DEVICE inline double value(Accumulator hi, Accumulator lo, const Scale& s) {
  if constexpr (Words == 2) {
    return double(hi) * s.inverse + double(lo) * (s.inverse * s.inverse_lo);
  } else {
    (void)lo;
    return double(hi) * s.inverse;
  }
}

}  // namespace diffpm::fixed_point
