/// \file
/// \brief HMC's mass matrix for field-level inference: the Gauss-Newton approximation of the
/// posterior's precision over two parameter coordinates and a white-noise field on a mesh, in a
/// block form that is cheap to invert and to draw from (a mass for inference/hmc.hpp, concept in
/// inference/mass.hpp).
///
/// The posterior: data d with white Gaussian noise of rms sigma, a model m(u, w) of two
/// parameter coordinates u = (u_0, u_1) and a white-noise field w ~ N(0, 1) on a mesh::Grid,
///   U(q) = |m(u, w) - d|^2 / (2 sigma^2) + |w|^2 / 2 (+ a prior on u),   q = (u_0, u_1, w).
/// Its Gauss-Newton precision (the prior plus the likelihood's Fisher information, J = dm/dq) is
///   M = 1 + J^T J / sigma^2 = [[C, B^T], [B, A]],
/// stored as:
///   A = diag(1 + F(k)) on the field, diagonal in Fourier space: F(k) the Fisher information of
///       mode k, estimated from gradients g = J_w^T z / sigma with z ~ N(0, 1) per datum, for
///       which E[g g^T] = J_w^T J_w / sigma^2 (so F(k) = E|DFT(g)_k|^2 / N, N the mesh's cells);
///   B = J_w^T J_u / sigma^2, the coupling of each parameter coordinate to the field (2 vectors);
///   C = 1 + J_u^T J_u / sigma^2 (2x2).
///
/// Why this mass: modes the data measure well are far stiffer than the thousands only the prior
/// constrains, and HMC's step must resolve the stiffest direction (Neal 2011, "MCMC using
/// Hamiltonian dynamics", arXiv:1206.1901, sec. 4.1: a mass equal to the precision makes every
/// direction equally stiff); and a parameter such as an amplitude and the amplitude of the
/// measured modes are nearly degenerate (m ~ sigma8 w in linear theory), a ridge a diagonal mass
/// would crawl along: the coupling B puts that ridge into the metric.
///
/// Inverse and draws go through the 2x2 Schur complement S = C - B^T A^-1 B:
///   M^-1 v = (t_u, A^-1 v_w - A^-1 B t_u),  t_u = S^-1 (v_u - B^T A^-1 v_w);
///   r ~ N(0, M): r_w = A^1/2 xi_w, r_u = B^T A^-1/2 xi_w + L xi_u  (S = L L^T, Cholesky),
/// so that Cov(r_u) = B^T A^-1 B + S = C, Cov(r_w, r_u) = B, Cov(r_w) = A.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/inference/mass.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/grid.hpp"

namespace diffpm::inference {

/// The block mass above over q = (u_0, u_1, w), w the grid's cells in its row-major order
/// (mesh/grid.hpp). Before set_field_fisher and set_coupling it is the identity. Models the
/// mass concept of inference/mass.hpp.
class GaussNewtonMass {
 public:
  /// Parameter coordinates before the field in q.
  static constexpr int parameters = 2;

  /// `threads`: FFTW threads of the mass's own plans (its transforms are of the field's size).
  /// Copies share the plans (FFTW executes one plan on several threads at once safely).
  explicit GaussNewtonMass(const mesh::Grid& grid, int threads = max_threads())
      : grid_(grid),
        plan_(std::make_shared<const FftPlan<double>>(grid, threads)),
        a_(grid.complex_size(), 1.0) {
    clear_coupling();
  }

  std::size_t dimension() const { return parameters + grid_.size(); }
  std::size_t field_size() const { return grid_.size(); }
  const mesh::Grid& grid() const { return grid_; }

  /// A(k) = 1 + F(k), F(k) = mean over the probes of |DFT(g)_k|^2 / N, from probe gradients
  /// g = J_w^T z / sigma, z ~ N(0, 1) per datum (see the file comment). Clears the coupling
  /// (B = 0, C = 1: it was scaled and solved against the old A); set it again after this. Throws
  /// InvalidArgument if there is no probe or one is not of field_size().
  void set_field_fisher(const std::vector<std::vector<double>>& probes) {
    if (probes.empty()) {
      throw InvalidArgument(
          "GaussNewtonMass: probes = 0 (the field's Fisher information needs >= 1)");
    }
    mesh::RealField<double> g(grid_);
    mesh::ComplexField<double> gk(grid_);
    std::vector<double> f(a_.size(), 0.0);
    for (const auto& p : probes) {
      detail::check_size("GaussNewtonMass: a probe gradient", p.size(), grid_.size());
      std::copy(p.begin(), p.end(), g.data.begin());
      plan_->forward(g, gk);
      for (std::size_t c = 0; c < f.size(); ++c) f[c] += std::norm(gk.data[c]);
    }
    for (std::size_t c = 0; c < f.size(); ++c)
      a_[c] = 1.0 + f[c] / (double(grid_.size()) * double(probes.size()));
    clear_coupling();
  }

  /// The coupling B (b[k] = J_w^T J_{u_k} / sigma^2, field_size() numbers each) and
  /// C = 1 + J_u^T J_u / sigma^2 (symmetrised here).
  ///
  /// D = B^T A^-1 B is the information about u that the field's modes carry. With the exact
  /// Fisher matrix D <= C - 1 (the Schur complement S = C - D keeps the prior's 1); with A's
  /// diagonal, noisy estimate it need not, so B is scaled by beta <= 1 with beta^2 D <= C - 1:
  /// beta^2 = 1 / the largest eigenvalue of (C - 1)^-1 D when that exceeds 1, 0 when C - 1 is
  /// singular (no parameter information to share). Throws InvalidArgument if a b[k] is not of
  /// field_size(), C is not finite, or S is not positive definite.
  void set_coupling(std::array<std::vector<double>, 2> b, std::array<std::array<double, 2>, 2> c) {
    for (int k = 0; k < 2; ++k) {
      detail::check_size(
          k == 0 ? "GaussNewtonMass: coupling b[0]" : "GaussNewtonMass: coupling b[1]", b[k].size(),
          grid_.size());
      for (int l = 0; l < 2; ++l) {
        if (!std::isfinite(c[k][l])) {
          throw InvalidArgument("GaussNewtonMass: C[" + std::to_string(k) + "][" +
                                std::to_string(l) + "] = " + format_number(c[k][l]) +
                                " (must be finite)");
        }
      }
    }
    // Computed into locals and committed at the end: a throw leaves the mass as it was.
    std::array<std::vector<double>, 2> a_inv_b;
    std::array<std::array<double, 2>, 2> d{};
    for (int k = 0; k < 2; ++k) field_power(-1.0, b[k].data(), a_inv_b[k]);
    for (int k = 0; k < 2; ++k)
      for (int l = 0; l < 2; ++l)
        for (std::size_t i = 0; i < b[k].size(); ++i) d[k][l] += b[k][i] * a_inv_b[l][i];
    const double g00 = c[0][0] - 1.0, g01 = 0.5 * (c[0][1] + c[1][0]), g11 = c[1][1] - 1.0;
    const double gdet = g00 * g11 - g01 * g01;
    double beta2 = 1.0;
    if (gdet > 0.0) {
      // (C - 1)^-1 D, its largest eigenvalue from the trace and determinant.
      const double m00 = (g11 * d[0][0] - g01 * d[1][0]) / gdet,
                   m01 = (g11 * d[0][1] - g01 * d[1][1]) / gdet,
                   m10 = (-g01 * d[0][0] + g00 * d[1][0]) / gdet,
                   m11 = (-g01 * d[0][1] + g00 * d[1][1]) / gdet;
      const double tr = m00 + m11, det = m00 * m11 - m01 * m10;
      const double lmax = 0.5 * tr + std::sqrt(std::max(0.0, 0.25 * tr * tr - det));
      if (lmax > 1.0) beta2 = 1.0 / lmax;
    } else {
      beta2 = 0.0;
    }
    std::array<std::array<double, 2>, 2> s{};
    for (int k = 0; k < 2; ++k)
      for (int l = 0; l < 2; ++l) s[k][l] = (k == l ? c[k][k] : g01) - beta2 * d[k][l];
    s[0][1] = s[1][0] = 0.5 * (s[0][1] + s[1][0]);
    const double det = s[0][0] * s[1][1] - s[0][1] * s[0][1];
    if (!(s[0][0] > 0.0) || !(det > 0.0)) {
      throw InvalidArgument("GaussNewtonMass: the Schur complement S = [[" +
                            format_number(s[0][0]) + ", " + format_number(s[0][1]) + "], [" +
                            format_number(s[1][0]) + ", " + format_number(s[1][1]) +
                            "]] is not positive definite (C must be)");
    }
    coupling_scale_ = std::sqrt(beta2);
    for (int k = 0; k < 2; ++k) {
      for (auto& x : b[k]) x *= coupling_scale_;
      for (auto& x : a_inv_b[k]) x *= coupling_scale_;
    }
    b_ = std::move(b);
    a_inv_b_ = std::move(a_inv_b);
    s_ = s;
    s_inv_ = {{{s_[1][1] / det, -s_[0][1] / det}, {-s_[0][1] / det, s_[0][0] / det}}};
    l00_ = std::sqrt(s_[0][0]);
    l10_ = s_[0][1] / l00_;
    l11_ = std::sqrt(s_[1][1] - l10_ * l10_);
  }

  /// The factor beta applied to the coupling (1 when the estimates were consistent).
  double coupling_scale() const { return coupling_scale_; }
  /// The largest A(k): the stiffest field mode's mass (its period sets the largest stable step,
  /// 2 / sqrt(the largest eigenvalue of M^-1 H) for a Hessian H of U; Neal 2011, sec. 4.2).
  double largest_field_mass() const { return *std::max_element(a_.begin(), a_.end()); }
  /// The marginal standard deviation of u_k implied by the mass, sqrt((M^-1)_kk) = sqrt(S^-1_kk):
  /// the posterior's width in u_k when M is its precision.
  double parameter_scale(int k) const {
    if (k < 0 || k >= parameters) {
      throw InvalidArgument("GaussNewtonMass: parameter index " + std::to_string(k) +
                            " (must be 0 or 1)");
    }
    return std::sqrt(s_inv_[k][k]);
  }

  /// v = M^-1 r (r, v: u then w).
  void velocity(const std::vector<double>& r, std::vector<double>& v) const {
    detail::check_size("GaussNewtonMass::velocity: momentum", r.size(), dimension());
    std::vector<double> aw;
    field_power(-1.0, r.data() + parameters, aw);  // A^-1 r_w
    double t[2];
    for (int k = 0; k < 2; ++k) {
      double dot = 0.0;
      for (std::size_t i = 0; i < aw.size(); ++i) dot += b_[k][i] * aw[i];
      t[k] = r[k] - dot;
    }
    v.resize(r.size());
    v[0] = s_inv_[0][0] * t[0] + s_inv_[0][1] * t[1];
    v[1] = s_inv_[1][0] * t[0] + s_inv_[1][1] * t[1];
    for (std::size_t i = 0; i < aw.size(); ++i)
      v[parameters + i] = aw[i] - a_inv_b_[0][i] * v[0] - a_inv_b_[1][i] * v[1];
  }

  /// K = r^T M^-1 r / 2.
  double kinetic(const std::vector<double>& r) const {
    std::vector<double> v;
    velocity(r, v);
    return kinetic_energy(r, v);
  }

  /// r ~ N(0, M): the field's N standard normals first (in cell order), then the two of u.
  template <class Rng>
  void draw(Rng& rng, std::vector<double>& r) const {
    std::normal_distribution<double> normal;
    std::vector<double> xi(grid_.size()), half, a_inv_half;
    for (auto& x : xi) x = normal(rng);
    field_power(0.5, xi.data(), half);         // A^1/2 xi_w
    field_power(-0.5, xi.data(), a_inv_half);  // A^-1/2 xi_w
    const double x0 = normal(rng), x1 = normal(rng);
    r.resize(parameters + xi.size());
    for (int k = 0; k < 2; ++k) {
      double dot = 0.0;
      for (std::size_t i = 0; i < xi.size(); ++i) dot += b_[k][i] * a_inv_half[i];
      r[k] = dot + (k == 0 ? l00_ * x0 : l10_ * x0 + l11_ * x1);
    }
    std::copy(half.begin(), half.end(), r.begin() + parameters);
  }

 private:
  /// B = 0, S = C = 1: the parameter block decoupled with unit mass.
  void clear_coupling() {
    for (int k = 0; k < 2; ++k) {
      b_[k].assign(grid_.size(), 0.0);
      a_inv_b_[k].assign(grid_.size(), 0.0);
    }
    s_ = {{{1.0, 0.0}, {0.0, 1.0}}};
    s_inv_ = s_;
    l00_ = 1.0;
    l10_ = 0.0;
    l11_ = 1.0;
    coupling_scale_ = 1.0;
  }

  /// out = A^power v on the field. A^power is symmetric and real: c2r(A(k)^power r2c(v)) / N,
  /// A(k) = A(-k) because F(k) is |DFT(g)_k|^2 of real g.
  void field_power(double power, const double* v, std::vector<double>& out) const {
    mesh::RealField<double> x(grid_);
    std::copy(v, v + grid_.size(), x.data.begin());
    mesh::ComplexField<double> xk(grid_);
    plan_->forward(x, xk);
    const double inv_n = 1.0 / double(grid_.size());
    for (std::size_t c = 0; c < a_.size(); ++c) xk.data[c] *= std::pow(a_[c], power) * inv_n;
    plan_->inverse_destroying_input(xk, x);
    out.assign(x.data.begin(), x.data.end());
  }

  mesh::Grid grid_;
  std::shared_ptr<const FftPlan<double>> plan_;
  std::vector<double> a_;
  std::array<std::vector<double>, 2> b_, a_inv_b_;
  std::array<std::array<double, 2>, 2> s_{}, s_inv_{{{1.0, 0.0}, {0.0, 1.0}}};
  double l00_ = 1.0, l10_ = 0.0, l11_ = 1.0, coupling_scale_ = 1.0;
};

/// The pieces of a model the Gauss-Newton mass is estimated from (data flattened to one
/// vector, in any order, the same for both).
struct GaussNewtonModel {
  /// m(u, w): the model's prediction of the data at parameter coordinates u and field w.
  std::function<std::vector<double>(const std::array<double, 2>& u, const std::vector<double>& w)>
      predict;
  /// J_w^T y at (u, w): the gradient with respect to w of <y, m(u, w)> (a reverse-mode pass),
  /// field_size() numbers.
  std::function<std::vector<double>(const std::array<double, 2>& u, const std::vector<double>& w,
                                    const std::vector<double>& y)>
      pullback;
};

/// Sets `mass` to the Gauss-Newton mass at q = (u_0, u_1, w) for data of noise rms `sigma`:
/// four predictions for J_u = dm/du by central differences of half-width `du` (in u's units),
/// `probes` pullbacks of y = z / sigma (z ~ N(0, 1) per datum, from `rng`) for A, and two
/// pullbacks of J_{u_k} / sigma^2 for B. Cost: 4 predictions and probes + 2 pullbacks.
///
/// Throws InvalidArgument if q is not of mass.dimension(), sigma or du is not finite and > 0,
/// probes < 1, or the model's outputs have inconsistent sizes.
template <class Rng>
void estimate_gauss_newton_mass(GaussNewtonMass& mass, const GaussNewtonModel& model,
                                const std::vector<double>& q, double sigma, int probes, double du,
                                Rng& rng) {
  detail::check_size("estimate_gauss_newton_mass: q", q.size(), mass.dimension());
  if (!(sigma > 0.0) || !std::isfinite(sigma)) {
    throw InvalidArgument("estimate_gauss_newton_mass: sigma = " + format_number(sigma) +
                          " (must be finite and > 0)");
  }
  if (!(du > 0.0) || !std::isfinite(du)) {
    throw InvalidArgument("estimate_gauss_newton_mass: du = " + format_number(du) +
                          " (must be finite and > 0)");
  }
  if (probes < 1) {
    throw InvalidArgument("estimate_gauss_newton_mass: probes = " + std::to_string(probes) +
                          " (must be >= 1)");
  }
  constexpr int np = GaussNewtonMass::parameters;
  const std::array<double, 2> u = {q[0], q[1]};
  const std::vector<double> w(q.begin() + np, q.end());
  auto pullback = [&](const std::vector<double>& y) {
    std::vector<double> g = model.pullback(u, w, y);
    detail::check_size("estimate_gauss_newton_mass: a pullback", g.size(), mass.field_size());
    return g;
  };
  // J_u / sigma by central differences.
  std::array<std::vector<double>, 2> dm;
  for (int k = 0; k < 2; ++k) {
    std::array<double, 2> up = u, dn = u;
    up[k] += du;
    dn[k] -= du;
    const std::vector<double> mp = model.predict(up, w), mm = model.predict(dn, w);
    if (mp.empty() || mm.size() != mp.size() || (k > 0 && mp.size() != dm[0].size())) {
      throw InvalidArgument("estimate_gauss_newton_mass: predictions of " +
                            std::to_string(mp.size()) + " and " + std::to_string(mm.size()) +
                            " data (must be the same, > 0)");
    }
    dm[k].resize(mp.size());
    for (std::size_t i = 0; i < mp.size(); ++i) dm[k][i] = (mp[i] - mm[i]) / (2.0 * du) / sigma;
  }
  const std::size_t n_data = dm[0].size();
  // A: probe gradients J_w^T z / sigma.
  std::normal_distribution<double> normal;
  std::vector<std::vector<double>> g(probes);
  std::vector<double> z(n_data);
  for (int j = 0; j < probes; ++j) {
    for (auto& v : z) v = normal(rng) / sigma;
    g[j] = pullback(z);
  }
  mass.set_field_fisher(g);
  // C = 1 + J_u^T J_u / sigma^2 and B = J_w^T J_u / sigma^2.
  std::array<std::array<double, 2>, 2> c{};
  std::array<std::vector<double>, 2> b;
  for (int k = 0; k < 2; ++k) {
    for (int l = 0; l < 2; ++l) {
      double dot = 0.0;
      for (std::size_t i = 0; i < n_data; ++i) dot += dm[k][i] * dm[l][i];
      c[k][l] = (k == l ? 1.0 : 0.0) + dot;
    }
    std::vector<double> y(n_data);
    for (std::size_t i = 0; i < n_data; ++i) y[i] = dm[k][i] / sigma;
    b[k] = pullback(y);
  }
  mass.set_coupling(std::move(b), c);
}

}  // namespace diffpm::inference
