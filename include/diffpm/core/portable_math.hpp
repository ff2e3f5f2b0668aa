/// \file
/// \brief log, cos(2 pi u) and sin(2 pi u) in double that give the same bits on every backend.
///
/// The libm functions (glibc's std::log and std::cos on the CPU, CUDA's libdevice log and cos on
/// the GPU) are each within about 1 ulp of the exact value, but they are different
/// implementations and disagree in the last bit for some arguments. The functions here use only
/// operations that IEEE 754 rounds correctly, hence identically on every conforming machine:
/// +, -, *, / and exact operations (reading and writing the exponent bits of a double, floor,
/// comparisons, conversions of small integers). Same argument, same bits, on g++/glibc and on
/// nvcc device code alike.
///
/// Contraction. A compiler may fuse a * b + c into one fused multiply-add (one rounding instead
/// of two), which changes the last bits. Every multiply and add of the polynomials therefore goes
/// through detail::mul, detail::add, detail::sub and detail::div: in CUDA device code these are
/// the intrinsics __dmul_rn, __dadd_rn, __dsub_rn and __ddiv_rn, which nvcc never contracts
/// (it contracts plain device arithmetic by default, -fmad=true); on the host they are plain
/// operators. Host results are therefore the device results only if the host compiler does not
/// contract either. g++ contracts (after inlining, so these helpers do not stop it) whenever the
/// target has FMA instructions, whatever the -std mode: -march=native, -march=haswell, -mfma,
/// and always on aarch64; add -ffp-contract=off there. On x86-64's default target (no -march)
/// there is no FMA instruction and nothing is contracted. clang's default, -ffp-contract=on,
/// fuses only within one source expression, and every operation here is its own call.
/// docs/conventions.md ("White noise") states the same guarantee for the white noise.
///
/// Accuracy (against long double references, tests/core/test_portable_math.cpp): log, cos_2pi
/// and sin_2pi are within 1 ulp of the exact value (measured maxima 0.86, 0.80 and 0.78 ulp over
/// 10^7+ arguments), like glibc's, but not always correctly rounded.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "diffpm/core/host_device.hpp"

namespace diffpm::portable {

namespace detail {

// Arithmetic that no compiler contracts into a fused multiply-add on the device; on the host see
// the file comment (plain operators, no contraction in ISO C++ mode or without FMA hardware).
DIFFPM_HOST_DEVICE inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

DIFFPM_HOST_DEVICE inline float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

DIFFPM_HOST_DEVICE inline double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

DIFFPM_HOST_DEVICE inline double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

DIFFPM_HOST_DEVICE inline double div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

DIFFPM_HOST_DEVICE inline std::uint64_t to_bits(double x) {
#if defined(__CUDA_ARCH__)
  return std::uint64_t(__double_as_longlong(x));
#else
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}

DIFFPM_HOST_DEVICE inline double from_bits(std::uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

/// a = hi + lo exactly, hi with the upper 26 significant bits (Veltkamp's split; |a| < 2^996).
DIFFPM_HOST_DEVICE inline void split(double a, double& hi, double& lo) {
  const double c = mul(134217729.0, a);  // 2^27 + 1
  hi = sub(c, sub(c, a));
  lo = sub(a, hi);
}

/// a b = p + e exactly, p = fl(a b) (Dekker's product without FMA; exact unless e underflows).
DIFFPM_HOST_DEVICE inline void two_prod(double a, double b, double& p, double& e) {
  double ah, al, bh, bl;
  split(a, ah, al);
  split(b, bh, bl);
  p = mul(a, b);
  e = add(add(add(sub(mul(ah, bh), p), mul(ah, bl)), mul(al, bh)), mul(al, bl));
}

/// sin(pi r / 2) for r in [-1/2, 1/2] (|angle| <= pi/4): r (S1 + z P(z)), z = r^2, with
/// S1 = pi/2 split into S1_hi + S1_lo (S1_hi the double nearest pi/2) and P a degree-6
/// near-minimax (Chebyshev) fit of (sin(pi r/2)/r - pi/2)/r^2 on z in [0, 1/4] (fit error
/// 4.5e-20). r S1_hi is formed exactly as p + e (two_prod): its rounding would cost up to
/// 1 ulp of the result, which can lie a binade below the product. Then
/// sin = p + (e + r S1_lo + r z P(z)): only the final add rounds at full size.
DIFFPM_HOST_DEVICE inline double sin_quarter(double r) {
  constexpr double s1_hi = 0x1.921fb54442d18p+0;   // pi/2 rounded
  constexpr double s1_lo = 0x1.1a62633145c07p-54;  // pi/2 - s1_hi
  constexpr double p0 = -0x1.4abbce625be53p-1, p1 = 0x1.466bc6775aae1p-4,
                   p2 = -0x1.32d2cce62b872p-8, p3 = 0x1.50783486facaap-13,
                   p4 = -0x1.e3074d2614b2dp-19, p5 = 0x1.e8f036bcd3237p-25,
                   p6 = -0x1.6cc577dadd922p-31;
  const double z = mul(r, r);
  double p = add(p5, mul(z, p6));
  p = add(p4, mul(z, p));
  p = add(p3, mul(z, p));
  p = add(p2, mul(z, p));
  p = add(p1, mul(z, p));
  p = add(p0, mul(z, p));
  double lead, err;
  two_prod(r, s1_hi, lead, err);
  const double tail = add(err, add(mul(r, s1_lo), mul(mul(r, z), p)));
  return add(lead, tail);
}

/// cos(pi r / 2) for r in [-1/2, 1/2]: 1 - C2 z + z^2 P(z), z = r^2, C2 = pi^2/8 split into
/// C2_hi + C2_lo, P a degree-6 near-minimax fit of (cos(pi r/2) - 1 + C2 z)/z^2 on [0, 1/4]
/// (fit error 3.9e-21). The leading part 1 - C2_hi r^2 is formed to double-double accuracy:
/// r^2 = z + z_lo and C2_hi z = h + h_lo exactly (two_prod), w = 1 - h, and the rounding error
/// of w, (1 - w) - h (exact by Sterbenz), is added back with the small terms, as in fdlibm's
/// kernel cos. Only the final add rounds at full size.
DIFFPM_HOST_DEVICE inline double cos_quarter(double r) {
  constexpr double c2_hi = 0x1.3bd3cc9be45dep+0;   // pi^2/8 rounded
  constexpr double c2_lo = 0x1.692b71366cc04p-54;  // pi^2/8 - c2_hi
  constexpr double p0 = 0x1.03c1f081b5ac4p-2, p1 = -0x1.55d3c7e3cbffap-6,
                   p2 = 0x1.e1f506891b72fp-11, p3 = -0x1.a6d1f2a15a701p-16,
                   p4 = 0x1.f9d38850e5eedp-22, p5 = -0x1.b6df855cc99ffp-28,
                   p6 = 0x1.1ebe62242e9d8p-34;
  double z, z_lo, h, h_lo;
  two_prod(r, r, z, z_lo);
  double p = add(p5, mul(z, p6));
  p = add(p4, mul(z, p));
  p = add(p3, mul(z, p));
  p = add(p2, mul(z, p));
  p = add(p1, mul(z, p));
  p = add(p0, mul(z, p));
  two_prod(c2_hi, z, h, h_lo);
  const double w = sub(1.0, h);
  // -(h_lo + C2_hi z_lo + C2_lo z) + z^2 P(z): everything below the leading 1 - h.
  const double low = add(h_lo, add(mul(c2_hi, z_lo), mul(c2_lo, z)));
  const double small = sub(mul(mul(z, z), p), low);
  return add(w, add(sub(sub(1.0, w), h), small));
}

/// Splits |u| (finite) exactly into quarter turns: |u| - floor|u| = (q + r)/4 with q in
/// {0, 1, 2, 3, 4} and r in [-1/2, 1/2]. Every step is exact: the fractional part of a
/// non-negative double, the scaling by 4, v - floor(v) and r - 1 (Sterbenz) lose no bit.
DIFFPM_HOST_DEVICE inline void quarter_turns(double u, int& q, double& r) {
  const double a = std::fabs(u);
  const double frac = sub(a, std::floor(a));
  const double v = mul(4.0, frac);
  const double fl = std::floor(v);
  r = sub(v, fl);
  q = int(fl);
  if (r > 0.5) {
    r = sub(r, 1.0);
    ++q;
  }
}

}  // namespace detail

/// Natural logarithm. Any positive double, subnormals included; log(0) = -inf, log(+inf) = +inf,
/// NaN for x < 0 or NaN.
///
/// x = m 2^k with m in [sqrt(1/2), sqrt(2)); f = m - 1 (exact); s = f / (2 + f), so that
/// log m = 2 atanh(s) = 2 s + s R(s^2) with R(z) = z P(z), P a degree-7 near-minimax fit of
/// (2 atanh(s)/s - 2)/s^2 on z in [0, 0.0295] (|s| <= 0.1716, fit error 2.1e-18). As in fdlibm's
/// log, 2 s is rewritten as f - f^2/2 + s f^2/2 so that the exact f carries the leading term:
/// log x = k ln2_hi - ((f^2/2 - (s (f^2/2 + R) + k ln2_lo)) - f), with ln2 = ln2_hi + ln2_lo
/// (Cody-Waite: ln2_hi has 32 significant bits, so k ln2_hi is exact for |k| < 2^21).
DIFFPM_HOST_DEVICE inline double log(double x) {
  using detail::add;
  using detail::mul;
  using detail::sub;
  constexpr double ln2_hi = 0x1.62e42feep-1;                    // 32 significant bits
  constexpr double ln2_lo = 0x1.a39ef35793c76p-33;              // ln 2 - ln2_hi
  constexpr std::uint64_t sqrt2_mantissa = 0x6a09e667f3bcdULL;  // sqrt(2) = 1.6a09e667f3bcd
  constexpr std::uint64_t mantissa_mask = 0x000fffffffffffffULL;
  constexpr double p0 = 0x1.5555555555555p-1, p1 = 0x1.9999999999a39p-2, p2 = 0x1.2492492476a1ap-2,
                   p3 = 0x1.c71c7201a55d7p-3, p4 = 0x1.745cf8e4bba1bp-3, p5 = 0x1.3b1c3c1c81c8fp-3,
                   p6 = 0x1.0fbde0f4ad17bp-3, p7 = 0x1.0c0aff044a970p-3;

  const double inf = detail::from_bits(0x7ff0000000000000ULL);
  if (!(x > 0.0)) return x == 0.0 ? -inf : detail::from_bits(0x7ff8000000000000ULL);  // NaN
  if (x == inf) return x;
  std::uint64_t bits = detail::to_bits(x);
  int k = int(bits >> 52);                     // biased exponent (the sign bit is 0)
  if (k == 0) {                                // subnormal
    bits = detail::to_bits(mul(x, 0x1.0p54));  // exact: now normal
    k = int(bits >> 52) - 54;
  }
  k -= 1023;
  std::uint64_t mantissa = bits & mantissa_mask;
  // m = 1.mantissa in [1, 2); above sqrt(2), take m/2 and k + 1 instead.
  if (mantissa >= sqrt2_mantissa) {
    ++k;
    mantissa |= std::uint64_t(1022) << 52;
  } else {
    mantissa |= std::uint64_t(1023) << 52;
  }
  const double m = detail::from_bits(mantissa);
  const double f = sub(m, 1.0);  // exact (Sterbenz)
  const double s = detail::div(f, add(2.0, f));
  const double z = mul(s, s);
  double p = add(p6, mul(z, p7));
  p = add(p5, mul(z, p));
  p = add(p4, mul(z, p));
  p = add(p3, mul(z, p));
  p = add(p2, mul(z, p));
  p = add(p1, mul(z, p));
  p = add(p0, mul(z, p));
  const double R = mul(z, p);
  const double hfsq = mul(mul(0.5, f), f);
  const double dk = double(k);
  const double inner = add(mul(s, add(hfsq, R)), mul(dk, ln2_lo));
  return sub(mul(dk, ln2_hi), sub(sub(hfsq, inner), f));
}

/// cos(2 pi u) for any finite u, exact argument reduction (no pi in the reduction: u counts
/// turns). cos_2pi(0) = 1, cos_2pi(1/4) = cos_2pi(3/4) = +0, cos_2pi(1/2) = -1 exactly.
DIFFPM_HOST_DEVICE inline double cos_2pi(double u) {
  int q;
  double r;
  detail::quarter_turns(u, q, r);  // cos is even: |u| is enough
  // cos(pi/2 (q + r)) by the quadrant q mod 4; 0 - s rather than -s gives +0 for s = +0.
  switch (q & 3) {
    case 0:
      return detail::cos_quarter(r);
    case 1:
      return detail::sub(0.0, detail::sin_quarter(r));
    case 2:
      return detail::sub(0.0, detail::cos_quarter(r));
    default:
      return detail::sin_quarter(r);
  }
}

/// sin(2 pi u) for any finite u, exact argument reduction. sin_2pi(0) = sin_2pi(1/2) = 0,
/// sin_2pi(1/4) = 1, sin_2pi(3/4) = -1 exactly; sin_2pi(-u) = -sin_2pi(u).
DIFFPM_HOST_DEVICE inline double sin_2pi(double u) {
  int q;
  double r;
  detail::quarter_turns(u, q, r);
  double s;
  switch (q & 3) {
    case 0:
      s = detail::sin_quarter(r);
      break;
    case 1:
      s = detail::cos_quarter(r);
      break;
    case 2:
      s = detail::sub(0.0, detail::sin_quarter(r));
      break;
    default:
      s = detail::sub(0.0, detail::cos_quarter(r));
      break;
  }
  return u < 0 ? -s : s;
}

}  // namespace diffpm::portable
