/// \file
/// \brief The mass-matrix concept of the HMC sampler (inference/hmc.hpp) and its simplest
/// model, a diagonal mass.
///
/// HMC (Neal 2011, "MCMC using Hamiltonian dynamics", sec. 2 and 4.1) moves a position q under
/// H(q, r) = U(q) + K(r), K(r) = r^T M^-1 r / 2, with momenta r ~ N(0, M). A mass type M used by
/// inference::step and inference::trajectory provides, for vectors of dimension() numbers:
///
///   std::size_t dimension() const;                          // length of q and r
///   void velocity(const std::vector<double>& r,
///                 std::vector<double>& v) const;            // v = M^-1 r (dq/dt), resized
///   double kinetic(const std::vector<double>& r) const;     // K(r) = r^T M^-1 r / 2
///   template <class Rng>
///   void draw(Rng& rng, std::vector<double>& r) const;      // r ~ N(0, M), resized
///
/// M is symmetric positive definite; q and r are in the same (arbitrary) units as the
/// potential's argument, so M has units of 1/q^2 when U is dimensionless. A good mass
/// approximates the posterior's precision (the Hessian of U): then every direction of q moves at
/// the same rate and one step size suits them all (Neal 2011, sec. 4.1).
#pragma once

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"

namespace diffpm::inference {

/// K = r^T v / 2 with v = M^-1 r: the kinetic energy from a momentum and its velocity, summed in
/// index order (the order every mass here uses, so a chain's bits do not depend on the mass
/// type's implementation of kinetic()).
inline double kinetic_energy(const std::vector<double>& r, const std::vector<double>& v) {
  double k = 0.0;
  for (std::size_t i = 0; i < r.size(); ++i) k += 0.5 * r[i] * v[i];
  return k;
}

namespace detail {
/// Throws InvalidArgument unless `size` == `expected`, naming `what`.
inline void check_size(const char* what, std::size_t size, std::size_t expected) {
  if (size != expected) {
    throw InvalidArgument(std::string(what) + " has " + std::to_string(size) +
                          " entries, expected " + std::to_string(expected));
  }
}
}  // namespace detail

/// M = diag(m): independent coordinates of mass m_i (m_i = 1 / the posterior variance of q_i is
/// the usual choice). A DiagonalMass of ones is the identity (K = |r|^2 / 2).
class DiagonalMass {
 public:
  /// The identity mass in `dimension` coordinates.
  explicit DiagonalMass(std::size_t dimension)
      : DiagonalMass(std::vector<double>(dimension, 1.0)) {}

  /// Throws InvalidArgument unless every m_i is finite and > 0 and there is at least one.
  explicit DiagonalMass(std::vector<double> masses) : m_(std::move(masses)) {
    if (m_.empty()) throw InvalidArgument("DiagonalMass: no coordinates (dimension = 0)");
    for (std::size_t i = 0; i < m_.size(); ++i) {
      if (!(m_[i] > 0.0) || !std::isfinite(m_[i])) {
        throw InvalidArgument("DiagonalMass: mass[" + std::to_string(i) +
                              "] = " + format_number(m_[i]) + " (must be finite and > 0)");
      }
    }
  }

  std::size_t dimension() const { return m_.size(); }
  const std::vector<double>& masses() const { return m_; }

  /// v = M^-1 r.
  void velocity(const std::vector<double>& r, std::vector<double>& v) const {
    detail::check_size("DiagonalMass::velocity: momentum", r.size(), m_.size());
    v.resize(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) v[i] = r[i] / m_[i];
  }

  /// K = r^T M^-1 r / 2.
  double kinetic(const std::vector<double>& r) const {
    std::vector<double> v;
    velocity(r, v);
    return kinetic_energy(r, v);
  }

  /// r ~ N(0, M): r_i = sqrt(m_i) xi_i, xi_i ~ N(0, 1) drawn in index order.
  template <class Rng>
  void draw(Rng& rng, std::vector<double>& r) const {
    std::normal_distribution<double> normal;
    r.resize(m_.size());
    for (std::size_t i = 0; i < m_.size(); ++i) r[i] = std::sqrt(m_[i]) * normal(rng);
  }

 private:
  std::vector<double> m_;
};

}  // namespace diffpm::inference
