/// \file
/// \brief Where each particle lies on the lightcone: the observer, the line of sight, and the
/// periodic replicas of the simulation box (with optional random shifts).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/ic/philox.hpp"

namespace diffpm::lensing {

/// The lightcone is longer (and usually wider) than the box, so the box is tiled periodically.
/// The observer sits at `observer` (Mpc/h, in box coordinates) and looks along +x; replica m
/// covers line-of-sight distances s in [m L_x, (m + 1) L_x). A particle at x has, in replica m,
///   s = m L_x + wrap(x_0 + r_m,0 - o_0, L_x),   (u, v) = (x_1 + r_m,1 - o_1, x_2 + r_m,2 - o_2),
/// with (u, v) its transverse position relative to the observer's line of sight (used modulo
/// (L_y, L_z): density planes are periodic, lensing/plane.hpp). r_m = 0 unless random shifts
/// are on; then r_m is uniform in the box, drawn with Philox from (seed, m), so the same
/// structure does not line up again in every replica (its image would repeat every L_x along
/// the line of sight and every L_y / chi across it). The shift moves a replica's content
/// rigidly (periodically), so each replica is still a valid realisation.
///
/// Without shifts, s is continuous in x across replica boundaries (a particle leaving replica m
/// enters replica m + 1 at the same s). With shifts, a particle crossing a boundary jumps
/// across the sky: the map is then discontinuous in positions there, so gradient checks by
/// finite differences should use unshifted replicas.
struct Replicas {
  std::array<double, 3> box{};
  std::array<double, 3> observer{};
  bool random_shifts = false;
  std::uint64_t seed = 0;

  Replicas() = default;
  Replicas(std::array<double, 3> box_lengths, std::array<double, 3> observer_position,
           bool shifts = false, std::uint64_t shift_seed = 0)
      : box(box_lengths), observer(observer_position), random_shifts(shifts), seed(shift_seed) {
    validate();
  }

  /// The observer at the middle of the box's x = 0 face: the usual choice, and with random
  /// shifts off the line of sight then runs through the middle of every replica.
  static Replicas centred(std::array<double, 3> box_lengths, bool shifts = false,
                          std::uint64_t shift_seed = 0) {
    return Replicas(box_lengths, {0.0, 0.5 * box_lengths[1], 0.5 * box_lengths[2]}, shifts,
                    shift_seed);
  }

  void validate() const {
    for (int d = 0; d < 3; ++d) {
      if (!(box[d] > 0.0) || !std::isfinite(box[d])) {
        throw InvalidArgument("lightcone: box length " + std::to_string(d) + " = " +
                              format_number(box[d]) + " Mpc/h (must be finite and > 0)");
      }
      if (!std::isfinite(observer[d])) {
        throw InvalidArgument("lightcone: observer coordinate " + std::to_string(d) + " = " +
                              format_number(observer[d]) + " (must be finite)");
      }
    }
  }

  /// The shift r_m of replica m (zero without random shifts).
  std::array<double, 3> shift(int m) const {
    if (!random_shifts) return {0.0, 0.0, 0.0};
    const ic::PhiloxKey key{{std::uint32_t(seed), std::uint32_t(seed >> 32)}};
    // Counter (m, stream tag): a stream of its own, distinct from the white-noise counters.
    const ic::PhiloxCounter c = ic::philox4x32_10({{std::uint32_t(m), 0x6c63u, 0u, 0u}}, key);
    const ic::PhiloxCounter c2 = ic::philox4x32_10({{std::uint32_t(m), 0x6c63u, 1u, 0u}}, key);
    return {box[0] * ic::uniform_closed_open(c.v[0], c.v[1]),
            box[1] * ic::uniform_closed_open(c.v[2], c.v[3]),
            box[2] * ic::uniform_closed_open(c2.v[0], c2.v[1])};
  }

  /// The replicas whose line-of-sight range [m L_x, (m + 1) L_x) meets [s_lo, s_hi].
  void replica_range(double s_lo, double s_hi, int& first, int& last) const {
    first = std::max(0, static_cast<int>(std::floor(s_lo / box[0])));
    last = std::max(first - 1, static_cast<int>(std::floor(s_hi / box[0])));
  }
};

/// Wraps c into [0, L): c - L floor(c / L), with round-off that lands on L folded back to 0.
inline double wrap_periodic(double c, double L) {
  double w = c - L * std::floor(c / L);
  if (w >= L) w -= L;
  if (w < 0.0) w = 0.0;
  return w;
}

}  // namespace diffpm::lensing
