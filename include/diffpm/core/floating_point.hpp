/// \file
/// \brief Refuses, at compile time, floating-point modes that break diffpm's contracts.
///
/// diffpm relies on IEEE-754 semantics in two places:
///  - input validation tests for NaN and infinities (std::isfinite), which -ffinite-math-only
///    (part of -ffast-math and -Ofast) lets the compiler fold to "always finite";
///  - the exactly reversible integrator (nbody/reversible.hpp) needs the force to be the same
///    function of the positions, bit for bit, in the forward and the reverse pass; reassociation
///    and reciprocal approximations (-fassociative-math, -freciprocal-math,
///    -funsafe-math-optimizations) let the compiler evaluate one expression differently at two
///    call sites, and the reverse pass would rebuild a slightly wrong trajectory.
/// Floating-point contraction cannot be detected by the preprocessor. GCC contracts a * b + c
/// into a fused multiply-add by default in C++ (-ffp-contract=fast; only ISO C modes turn it
/// off), but only where the target has FMA instructions: not on x86-64's default target, but
/// with -march=native, -mfma or on AArch64. For the integrator it is covered by sharing one
/// readout code path between the two passes and by the run-time check after every reverse pass
/// (docs/adjoint.md, "What exact reversal rests on"); for results that are bitwise equal across
/// backends (the white noise) see docs/conventions.md, "White noise".
#pragma once

#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__) || \
    defined(__ASSOCIATIVE_MATH__) || defined(__RECIPROCAL_MATH__)
#error \
    "diffpm: compiled with -ffast-math, -Ofast, -ffinite-math-only, -fassociative-math, -freciprocal-math or -funsafe-math-optimizations. diffpm needs IEEE floating point: its input checks test for NaN and infinities, and its exactly reversible integrator needs bit-identical forces in the forward and reverse passes. Compile the translation units that include diffpm without these flags (e.g. add -fno-fast-math)."
#endif
