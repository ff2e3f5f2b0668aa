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
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/portable_math.hpp"
#include "diffpm/ic/philox.hpp"

namespace diffpm::lensing {

/// A symmetry of the box: image coordinate d is sign[d] * x[axis[d]].
struct Orientation {
  std::array<int, 3> axis{0, 1, 2};
  std::array<double, 3> sign{1.0, 1.0, 1.0};
};

/// The lightcone is longer (and usually wider) than the box, so the box is tiled periodically.
/// The observer sits at `observer` (Mpc/h, in box coordinates) and looks along +x; replica m
/// covers line-of-sight distances s in [m L_x, (m + 1) L_x). Replica m holds the box's content
/// reoriented and shifted, c = O_m(x) + r_m (image()), and a particle at x has there
///   s = m L_x + wrap(c_0 - o_0, L_x),   (X, Y) = (c_1 - o_1, c_2 - o_2) + (j L_y, k L_z),
/// with (X, Y) its transverse position relative to the line of sight, over every periodic image
/// (j, k) across it (shell_painting.hpp enumerates those that fall on the plane).
///
/// Both transformations move a replica's content rigidly, so each replica is still a valid
/// realisation of the same statistics; they are drawn with Philox from (seed, m):
/// - random shifts: r_m uniform in the box, so the same structure does not line up again in
///   every replica (without them its image repeats every L_x along the line of sight, and the
///   k_x = 0 modes of the box add up coherently over replicas);
/// - random orientations: O_m one of the symmetries of the box, a permutation of the axes of
///   equal length (all 6 in a cube) times a reflection of any of them (48 in a cube), so that
///   replicas also differ in which box modes lie across the line of sight: a shift changes
///   their phases only, and every replica would otherwise project the same k_x = 0 modes.
///
/// Without either, s is continuous in x across replica boundaries (a particle leaving replica m
/// enters replica m + 1 at the same s). With them, a particle crossing a boundary jumps across
/// the sky: the map is then discontinuous in positions there, so gradient checks by finite
/// differences should keep particles away from replica boundaries or use plain replicas.
struct Replicas {
  std::array<double, 3> box{};
  std::array<double, 3> observer{};
  bool random_shifts = false;
  std::uint64_t seed = 0;
  bool random_orientations = false;

  Replicas() = default;
  Replicas(std::array<double, 3> box_lengths, std::array<double, 3> observer_position,
           bool shifts = false, std::uint64_t replica_seed = 0, bool orientations = false)
      : box(box_lengths),
        observer(observer_position),
        random_shifts(shifts),
        seed(replica_seed),
        random_orientations(orientations) {
    validate();
  }

  /// The observer at the middle of the box's x = 0 face: the usual choice, and with random
  /// shifts off the line of sight then runs through the middle of every replica.
  static Replicas centred(std::array<double, 3> box_lengths, bool shifts = false,
                          std::uint64_t replica_seed = 0, bool orientations = false) {
    return Replicas(box_lengths, {0.0, 0.5 * box_lengths[1], 0.5 * box_lengths[2]}, shifts,
                    replica_seed, orientations);
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

  /// The orientation O_m of replica m (the identity without random orientations): uniform over
  /// the box's symmetries, from a Philox stream of its own.
  Orientation orientation(int m) const {
    if (!random_orientations) return {};
    const ic::PhiloxKey key{{std::uint32_t(seed), std::uint32_t(seed >> 32)}};
    const ic::PhiloxCounter c = ic::philox4x32_10({{std::uint32_t(m), 0x6c63u, 2u, 0u}}, key);
    static constexpr int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                        {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    int allowed[6], count = 0;
    for (int k = 0; k < 6; ++k) {
      bool ok = true;
      for (int d = 0; d < 3; ++d) ok = ok && box[perms[k][d]] == box[d];
      if (ok) allowed[count++] = k;
    }
    Orientation o;
    const int k = allowed[c.v[0] % std::uint32_t(count)];
    for (int d = 0; d < 3; ++d) {
      o.axis[d] = perms[k][d];
      o.sign[d] = (c.v[1] >> d) & 1u ? -1.0 : 1.0;
    }
    return o;
  }

  /// Where replica m puts a point x of the box, before wrapping: O_m(x) + r_m.
  template <class P>
  std::array<double, 3> image(int m, const P& x) const {
    const Orientation o = orientation(m);
    const auto r = shift(m);
    return {o.sign[0] * double(x[o.axis[0]]) + r[0], o.sign[1] * double(x[o.axis[1]]) + r[1],
            o.sign[2] * double(x[o.axis[2]]) + r[2]};
  }

  /// The replicas whose line-of-sight range [m L_x, (m + 1) L_x) meets [s_lo, s_hi].
  void replica_range(double s_lo, double s_hi, int& first, int& last) const {
    first = std::max(0, static_cast<int>(std::floor(s_lo / box[0])));
    last = std::max(first - 1, static_cast<int>(std::floor(s_hi / box[0])));
  }
};

/// Wraps c into [0, L): c - L floor(c / L), with round-off that lands on L folded back to 0.
/// The product and the difference are rounded separately on every backend
/// (core/portable_math.hpp: nvcc would otherwise fuse them), so a shell's images lie at the same
/// s on the CPU and the device, and its painted plane is the same bits.
DIFFPM_HOST_DEVICE inline double wrap_periodic(double c, double L) {
  using portable::detail::mul;
  double w = portable::detail::sub(c, mul(L, std::floor(c / L)));
  if (w >= L) w -= L;
  if (w < 0.0) w = 0.0;
  return w;
}

}  // namespace diffpm::lensing
