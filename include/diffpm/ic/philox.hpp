/// \file
/// \brief Philox4x32-10, the counter-based random number generator of Salmon et al. (2011).
#pragma once

#include <cstdint>

#include "diffpm/core/host_device.hpp"

namespace diffpm::ic {

/// 128-bit counter (and output block) and 64-bit key of Philox4x32.
struct PhiloxCounter {
  std::uint32_t v[4];
};
struct PhiloxKey {
  std::uint32_t v[2];
};

namespace detail {
/// High and low 32-bit halves of the 64-bit product a b.
DIFFPM_HOST_DEVICE inline void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                         std::uint32_t& lo) {
  const std::uint64_t product = std::uint64_t(a) * std::uint64_t(b);
  hi = std::uint32_t(product >> 32);
  lo = std::uint32_t(product);
}
}  // namespace detail

/// Philox4x32 with 10 rounds: a bijection of the counter for each key, so distinct counters give
/// independent-looking blocks with no state to carry (Salmon, Moraes, Dror & Shaw 2011, "Parallel
/// random numbers: as easy as 1, 2, 3", SC'11, sec. 3.2 and table 2). Round function (their
/// S-box with the Random123 word order): with (hi0, lo0) = M0 c0 and (hi1, lo1) = M1 c2,
///   c <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0),
/// and the key is bumped by the Weyl constants (W0, W1) between rounds. Checked against the
/// Random123 known-answer vectors (kat_vectors) in tests/ic/test_philox.cpp; the same
/// arithmetic as cuRAND's curand_philox4x32_x.h, so the GPU backend can reuse this function.
DIFFPM_HOST_DEVICE inline PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key.v[0] += W0;
      key.v[1] += W1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    detail::mulhilo32(M0, ctr.v[0], hi0, lo0);
    detail::mulhilo32(M1, ctr.v[2], hi1, lo1);
    ctr = PhiloxCounter{{hi1 ^ ctr.v[1] ^ key.v[0], lo1, hi0 ^ ctr.v[3] ^ key.v[1], lo0}};
  }
  return ctr;
}

/// A double in (0, 1] from the top 53 bits of the 64-bit word (hi, lo): (m + 1) 2^-53 with
/// m in [0, 2^53), so log() of it is finite (Box-Muller). Exact: every value is a double.
DIFFPM_HOST_DEVICE inline double uniform_open_closed(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t m = ((std::uint64_t(hi) << 32) | lo) >> 11;
  return double(m + 1) * 0x1.0p-53;
}

/// A double in [0, 1) from the top 53 bits of (hi, lo): m 2^-53.
DIFFPM_HOST_DEVICE inline double uniform_closed_open(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t m = ((std::uint64_t(hi) << 32) | lo) >> 11;
  return double(m) * 0x1.0p-53;
}

}  // namespace diffpm::ic
