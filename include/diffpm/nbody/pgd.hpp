/// \file
/// \brief Potential gradient descent (PGD): a small-scale correction of particle positions after
/// a PM run, its adjoint, and the derivatives with respect to its own parameters.
///
/// Dai, Feng & Seljak 2018 (JCAP 11, 009; arXiv:1804.00671), eqs. 2.3-2.5: a PM run with few
/// steps and a coarse mesh lacks the short-range force, so its halos are too puffy and its
/// power too low at k >~ 0.5 h/Mpc. PGD moves every particle once along the gradient of a
/// band-filtered potential of its own density,
///   y = x + S(x),   S = -alpha(a) grad psi,   lap psi = O(k) delta,
///   O(k) = exp(-k_l^2 / k^2) exp(-(k / k_s)^4),   alpha(a) = alpha a^mu,
/// so particles slide towards the minima of the small-scale potential: the high-pass factor
/// (k_l) keeps the large scales, which the PM run gets right, untouched; the low-pass factor
/// (k_s) keeps the mesh's noisy cell scale out. The paper fits alpha's time dependence as a
/// power law in a; mu = 0 gives one alpha at every a. alpha is dimensionless, k_l and k_s are in
/// h/Mpc. The paper's gravity normalisation (3/2 Omega_m / H0^2) is absorbed in alpha here,
/// as in JaxPM's pgd_correction, so with the same mesh in Mpc/h units the three numbers mean
/// the same in both codes (JaxPM's k_l, k_s are in radians per cell: multiply by n/L).
///
/// Discretisation: the same as the PM force (nbody/pm_force.hpp, docs/physics.md): CIC counts
/// on the mesh, delta_k = (N_cells / N_p) r2c(counts) (the mean drops out), psi_k =
/// -O(k) delta_k / |k|_L^2 with the force's Laplacian kernel, the finite-difference gradient of
/// the force's kernel options in real space, and CIC readout at x. O uses the exact |k|. The
/// displacement is returned unwrapped (y may lie outside the box; every CIC paint wraps).
#pragma once

#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/finite_difference.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "diffpm/particles/cic_plan.hpp"
#include "diffpm/particles/detail/cic_interpolate.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::nbody {

/// The four numbers of the PGD correction (see the file comment).
struct PgdParameters {
  double alpha = 0.0;  ///< amplitude at a = 1 (dimensionless; 0 turns the correction off)
  double k_l = 0.0;    ///< large-scale cut in h/Mpc, >= 0 (0: no cut)
  double k_s = 1.0;    ///< small-scale cut in h/Mpc, > 0
  double mu = 0.0;     ///< alpha(a) = alpha a^mu

  /// alpha(a) = alpha a^mu.
  double alpha_at(double a) const { return alpha * std::pow(a, mu); }

  /// Throws InvalidArgument naming the parameter unless alpha and mu are finite, k_l is finite
  /// and >= 0 and k_s finite and > 0.
  void validate(const char* who = "PGD") const {
    auto fail = [&](const char* name, double v, const char* rule) {
      throw InvalidArgument(std::string(who) + ": " + name + " = " + format_number(v) + " (" +
                            rule + ")");
    };
    if (!std::isfinite(alpha)) fail("alpha", alpha, "must be finite");
    if (!std::isfinite(mu)) fail("mu", mu, "must be finite");
    if (!(k_l >= 0.0) || !std::isfinite(k_l)) fail("k_l", k_l, "h/Mpc; must be finite and >= 0");
    if (!(k_s > 0.0) || !std::isfinite(k_s)) fail("k_s", k_s, "h/Mpc; must be finite and > 0");
  }
};

/// dL/d(each of PgdParameters), the parameter part of a PGD adjoint.
struct PgdGradient {
  double alpha = 0.0, k_l = 0.0, k_s = 0.0, mu = 0.0;
  PgdGradient& operator+=(const PgdGradient& o) {
    alpha += o.alpha;
    k_l += o.k_l;
    k_s += o.k_s;
    mu += o.mu;
    return *this;
  }
};

namespace detail {

/// The PGD potential kernel of one mode and its derivatives: K = -O(k) scale / |k|_L^2 with
/// O = exp(-k_l^2 / k^2) exp(-k^4 / k_s^4), dK/dk_l and dK/dk_s; all 0 for the zero mode.
/// kk = |k|^2 (exact), lap = |k|_L^2 (the Laplacian's symbol), kl2 = k_l^2, ks4 = k_s^4.
/// Every backend's kernel pass calls this, so they agree bit for bit.
struct PgdModeKernel {
  double K = 0.0, dk_l = 0.0, dk_s = 0.0;
};
DIFFPM_HOST_DEVICE inline PgdModeKernel pgd_mode_kernel(double kk, double lap, double k_l,
                                                        double kl2, double k_s, double ks4,
                                                        double scale) {
  using std::exp;
  PgdModeKernel r;
  if (kk > 0.0 && lap > 0.0) {
    const double filter = exp(-kl2 / kk) * exp(-(kk * kk) / ks4);
    r.K = -filter * scale / lap;
    r.dk_l = r.K * (-2.0 * k_l / kk);
    r.dk_s = r.K * (4.0 * kk * kk / (ks4 * k_s));
  }
  return r;
}

/// w Re(delta conj(v)) of one mode in double: the term of the parameter derivatives.
template <class T>
DIFFPM_HOST_DEVICE inline double pgd_mode_product(T delta_re, T delta_im, T v_re, T v_im,
                                                  double weight) {
  return weight * (double(delta_re) * double(v_re) + double(delta_im) * double(v_im));
}

/// The half-spectrum multiplicity of column kz (1 on kz = 0 and, n_z even, the Nyquist plane).
DIFFPM_HOST_DEVICE inline double pgd_mode_weight(int kz, int nzc, bool even_z) {
  return (kz == 0 || (even_z && kz == nzc - 1)) ? 1.0 : 2.0;
}

/// Rows (i, j) of the half spectrum per block of the parameter sums.
constexpr std::ptrdiff_t pgd_rows_per_block = 16;

/// The per-axis tables of the kernel pass, concatenated: |k_d|^2 for d = x, y, z, then the
/// Laplacian's axis symbols, each indexed by FFT index (half spectrum along z).
inline std::vector<double> pgd_axis_tables(const mesh::Grid& g, mesh::LaplacianKernel kind) {
  std::vector<double> t;
  for (int which = 0; which < 2; ++which)
    for (int d = 0; d < 3; ++d) {
      const int count = d == 2 ? g.complex_nz() : g.n[d];
      for (int idx = 0; idx < count; ++idx) {
        const double k = g.wavenumber(d, idx);
        t.push_back(which == 0 ? k * k : mesh::laplacian_axis_symbol(k, g.cell_size(d), kind));
      }
    }
  return t;
}

/// The checks every backend's constructor makes of its kernel options.
inline void check_pgd_kernel(const mesh::ForceKernelOptions& kernel, const char* who) {
  if (!mesh::has_real_space_stencil(kernel.gradient) || !kernel.real_space_gradient) {
    throw InvalidArgument(
        std::string(who) + ": gradient kernel " +
        std::to_string(static_cast<int>(kernel.gradient)) +
        (kernel.real_space_gradient ? "" : " in Fourier space") +
        " (PGD applies a finite-difference gradient, finite_difference_2 or _4, in real space)");
  }
  if (kernel.smoothing_scale != 0.0) {
    throw InvalidArgument(std::string(who) +
                          ": smoothing scale = " + format_number(kernel.smoothing_scale) +
                          " Mpc/h (must be 0: the PGD band filter replaces it)");
  }
  mesh::detail::check_kinds(kernel.laplacian, kernel.gradient, who);
}

/// The checks of every call: the parameters, and a finite a > 0.
inline void check_pgd_call(const PgdParameters& p, double a, const char* who) {
  p.validate(who);
  if (!(a > 0.0) || !std::isfinite(a)) {
    throw InvalidArgument(std::string(who) + ": scale factor a = " + format_number(a) +
                          " (must be finite and > 0)");
  }
}

/// Throws unless n (of `what`) matches the particle count.
inline void check_pgd_size(std::size_t n, std::size_t particles, const char* what,
                           const char* who) {
  if (n != particles) {
    throw InvalidArgument(std::string(who) + ": " + std::to_string(n) + " " + what + " for " +
                          std::to_string(particles) + " particles");
  }
}

/// 1/N_p: the (N_cells / N_p) of the overdensity times the 1/N_cells of the c2r.
inline double pgd_scale(std::size_t mean_count, std::size_t n_particles, const char* who) {
  const std::size_t np = mean_count ? mean_count : n_particles;
  if (np == 0) throw InvalidArgument(std::string(who) + ": no particles to set the mean density");
  return 1.0 / double(np);
}

/// dL/d(the parameters) from dot = <S_bar, S / alpha(a)> and the kernel sums of dK/dk_l, dK/dk_s.
inline PgdGradient pgd_gradient(const PgdParameters& p, double a, double dot,
                                const std::array<double, 2>& sums) {
  const double alpha = p.alpha_at(a);
  PgdGradient g;
  g.alpha = dot * std::pow(a, p.mu);
  g.mu = dot * alpha * std::log(a);
  g.k_l = alpha * sums[0];
  g.k_s = alpha * sums[1];
  return g;
}

}  // namespace detail

/// The PGD displacement S(x) on one periodic mesh, its vector-Jacobian product and the
/// derivatives with respect to (alpha, k_l, k_s, mu). One object holds the mesh fields (two
/// real meshes and, for the adjoint, two half spectra) and reuses them across calls; not
/// thread-safe. Cost: the forward is one paint, one r2c, one c2r, three stencil passes and
/// three readouts, as a PM force; the adjoint adds three weighted paints, three stencil
/// transposes, one r2c, one c2r and one paint adjoint, and nothing is stored between the two.
///
/// Each particle has mass 1 / N_p of the box, N_p the number of particles passed in or the
/// fixed count given to the constructor (as PmForce). Requires a finite-difference gradient
/// (finite_difference_2 or _4, applied in real space) and no force smoothing in `kernel`: the
/// band filter O(k) takes the smoothing's place.
///
/// Backend: Cpu (this class) or Cuda (nbody/pgd_device.hpp: the same operator on device
/// memory, bit for bit this one in the host emulation).
template <class T, class Backend = Cpu>
class PgdCorrection;

template <class T>
class PgdCorrection<T, Cpu> {
 public:
  PgdCorrection(const mesh::Grid& grid, mesh::ForceKernelOptions kernel = {},
                std::size_t mean_count = 0, int threads = max_threads())
      : PgdCorrection(std::make_shared<const FftPlan<T>>(grid, threads), kernel, mean_count) {}

  /// On a shared FFT plan (out-of-place packed layout, e.g. the PM force's plan).
  PgdCorrection(std::shared_ptr<const FftPlan<T>> plan, mesh::ForceKernelOptions kernel = {},
                std::size_t mean_count = 0)
      : plan_(std::move(plan)),
        points_(require_plan(plan_, "PgdCorrection").grid()),
        kernel_(kernel),
        mean_count_(mean_count),
        real_(plan_->grid()),
        scratch_(plan_->grid()) {
    if (plan_->layout() != FftLayout::out_of_place_packed) {
      throw InvalidArgument(std::string("PgdCorrection: the FFT plan has the ") +
                            to_string(plan_->layout()) + " layout (needs out-of-place packed)");
    }
    detail::check_pgd_kernel(kernel_, "PgdCorrection");
  }

  const mesh::Grid& grid() const { return plan_->grid(); }

  /// S_p = S(x_p) at scale factor a (> 0, for alpha(a)), in Mpc/h, into the caller's memory
  /// (S.size == x.size; S must not alias x).
  void displacement(particles::Vec3View<const T> x, const PgdParameters& p, double a,
                    particles::Vec3View<T> S) {
    check(p, a);
    check_size(S.size, x.size, "displacements");
    const double alpha = p.alpha_at(a);
    potential(x, p, false);
    const auto g = particles::detail::cic_geometry<T>(grid());
    const std::ptrdiff_t n = std::ptrdiff_t(x.size);
    for (int d = 0; d < 3; ++d) {
      mesh::apply_difference(real_, d, kernel_.gradient, -1.0, scratch_);
      const T* m = scratch_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t q = 0; q < n; ++q) {
        const std::size_t i = std::size_t(q);
        const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
        T value;
        particles::detail::interpolate_at<false>(m, xi, g, value, static_cast<T*>(nullptr));
        S(i, d) = T(alpha * double(value));
      }
    }
    points_.clear();
  }

  /// Vector-Jacobian product of S: given S_bar = dL/dS, accumulates x_bar += (dS/dx)^T S_bar and
  /// returns dL/d(alpha, k_l, k_s, mu). Two terms, as the PM force's adjoint
  /// (nbody/pm_force.hpp): the readout weights move with x, and through the mesh, the paint of
  /// S_bar through the transposed stencils and the (real, self-adjoint) potential kernel to the
  /// counts, whose paint adjoint moves with x. The filter's parameters enter only the kernel:
  ///   dL/dtheta = alpha(a) sum_k w_k Re(dK/dtheta(k) delta_k conj(V_k)),
  /// V = r2c of the adjoint of psi, w_k the half-spectrum multiplicity (1 on the kz = 0 and
  /// Nyquist planes, else 2), dK/dk_l = K (-2 k_l / k^2), dK/dk_s = K (4 k^4 / k_s^5); and
  /// dL/dalpha(a) = <S_bar, S> / alpha(a), computed without the division. Sums are in double,
  /// in fixed blocks (the same bits for any thread count).
  PgdGradient displacement_adjoint(particles::Vec3View<const T> x, const PgdParameters& p, double a,
                                   particles::Vec3View<const T> S_bar,
                                   particles::Vec3View<T> x_bar) {
    check(p, a);
    check_size(S_bar.size, x.size, "displacement adjoints");
    check_size(x_bar.size, x.size, "position adjoints (x_bar)");
    const double alpha = p.alpha_at(a);
    potential(x, p, true);  // counts_: the counts' spectrum, kept for the kernel derivatives
    // (1) readout weights: x_bar += alpha S_bar_d grad F_d(x), and <S_bar, F> for alpha.
    // Summed in particle order, as the device backend sums it.
    double dot = 0.0;
    const auto geometry = particles::detail::cic_geometry<T>(grid());
    for (int d = 0; d < 3; ++d) {
      mesh::apply_difference(real_, d, kernel_.gradient, -1.0, scratch_);
      const T* m = scratch_.data.data();
      dot += deterministic_sum(std::ptrdiff_t(x.size), [&](std::ptrdiff_t q) {
        const std::size_t i = std::size_t(q);
        const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
        T value, grad[3];
        particles::detail::interpolate_at<true>(m, xi, geometry, value, grad);
        const T f = S_bar(i, d);
        const T w = T(alpha * double(f));
        for (int e = 0; e < 3; ++e) x_bar(i, e) += w * grad[e];
        return double(f) * double(value);
      });
    }
    // (2) through the mesh: real_ (psi is done with) = sum_d (-D_d)^T paint(S_bar_d).
    for (int d = 0; d < 3; ++d) {
      points_.paint(S_bar.component[d], S_bar.stride, scratch_);
      mesh::apply_difference_adjoint(
          scratch_, d, kernel_.gradient, -1.0, real_,
          d == 0 ? mesh::OutputMode::overwrite : mesh::OutputMode::accumulate);
    }
    plan_->forward(real_, work_);
    const std::complex<T>* delta = counts_.data.data();
    std::complex<T>* v = work_.data.data();
    const auto sums =
        kernel_pass(p, [&](std::size_t m, double K, double dk_l, double dk_s, double weight) {
          const double re = detail::pgd_mode_product(delta[m].real(), delta[m].imag(), v[m].real(),
                                                     v[m].imag(), weight);
          const double c = alpha * K;
          v[m] = std::complex<T>(T(c * double(v[m].real())), T(c * double(v[m].imag())));
          return std::array<double, 2>{re * dk_l, re * dk_s};
        });
    plan_->inverse_destroying_input(work_, real_);  // dL/dcounts
    points_.paint_adjoint(real_, T(1), x_bar);
    points_.clear();
    return detail::pgd_gradient(p, a, dot, sums);
  }

  /// y = x + S(x) on diffpm's containers (y resized; it must not be x).
  void apply(const particles::Positions<T>& x, const PgdParameters& p, double a,
             particles::Positions<T>& y) {
    if (&x == &y) throw InvalidArgument("PgdCorrection::apply: y must not be x");
    y.resize(x.size());
    displacement(particles::view(x), p, a, particles::view(y));
    for (std::size_t i = 0; i < x.size(); ++i)
      for (int d = 0; d < 3; ++d) y[i][d] += x[i][d];
  }

  /// The adjoint of apply: x_bar += y_bar + (dS/dx)^T y_bar (an empty x_bar is first made zeros
  /// of x's size); returns dL/d(the parameters).
  PgdGradient apply_adjoint(const particles::Positions<T>& x, const PgdParameters& p, double a,
                            const particles::Positions<T>& y_bar, particles::Positions<T>& x_bar) {
    if (x_bar.empty()) x_bar.assign(x.size(), {T(0), T(0), T(0)});
    check_size(y_bar.size(), x.size(), "position adjoints (y_bar)");
    check_size(x_bar.size(), x.size(), "position adjoints (x_bar)");
    const PgdGradient g = displacement_adjoint(particles::view(x), p, a, particles::view(y_bar),
                                               particles::view(x_bar));
    for (std::size_t i = 0; i < x.size(); ++i)
      for (int d = 0; d < 3; ++d) x_bar[i][d] += y_bar[i][d];
    return g;
  }

 private:
  static void check(const PgdParameters& p, double a) {
    detail::check_pgd_call(p, a, "PgdCorrection");
  }
  static void check_size(std::size_t n, std::size_t particles, const char* what) {
    detail::check_pgd_size(n, particles, what, "PgdCorrection");
  }

  /// Buckets and paints x, then real_ = psi (through work_). With keep_counts, counts_ keeps
  /// the counts' spectrum (delta_k N_p / N_cells), which the adjoint needs again.
  void potential(particles::Vec3View<const T> x, const PgdParameters& p, bool keep_counts) {
    scale_ = detail::pgd_scale(mean_count_, x.size, "PgdCorrection");
    points_.set_points(x);
    points_.paint(real_);
    if (work_.data.empty()) work_ = mesh::ComplexField<T>(grid());
    plan_->forward(real_, work_);
    if (keep_counts) counts_ = work_;
    std::complex<T>* w = work_.data.data();
    kernel_pass(p, [w](std::size_t m, double K, double, double, double) {
      w[m] = std::complex<T>(T(K * double(w[m].real())), T(K * double(w[m].imag())));
      return std::array<double, 2>{0.0, 0.0};
    });
    plan_->inverse_destroying_input(work_, real_);
  }

  /// Calls visit(m, K, dK/dk_l, dK/dk_s, w) for every half-spectrum mode m, K the potential
  /// kernel -O(k) scale / |k|_L^2 (0 for k = 0) and w its multiplicity; returns the two sums
  /// of visit's results, rows in fixed blocks (thread-count independent). visit may write to
  /// mode m.
  template <class Visit>
  std::array<double, 2> kernel_pass(const PgdParameters& p, const Visit& visit) const {
    const mesh::Grid& g = grid();
    const int nx = g.n[0], ny = g.n[1], nzc = g.complex_nz();
    const std::vector<double> t = detail::pgd_axis_tables(g, kernel_.laplacian);
    const double* k2[3] = {t.data(), t.data() + nx, t.data() + nx + ny};
    const double* lap[3] = {k2[2] + nzc, k2[2] + nzc + nx, k2[2] + nzc + nx + ny};
    const double kl2 = p.k_l * p.k_l, ks4 = p.k_s * p.k_s * p.k_s * p.k_s, sc = scale_;
    const bool even_z = g.n[2] % 2 == 0;
    return deterministic_sums<2>(
        std::ptrdiff_t(nx) * ny,
        [&](std::ptrdiff_t row) {
          const int i = int(row / ny), j = int(row % ny);
          std::array<double, 2> s{0.0, 0.0};
          for (int kz = 0; kz < nzc; ++kz) {
            const detail::PgdModeKernel k = detail::pgd_mode_kernel(
                k2[0][i] + k2[1][j] + k2[2][kz], lap[0][i] + lap[1][j] + lap[2][kz], p.k_l, kl2,
                p.k_s, ks4, sc);
            const std::array<double, 2> r = visit(g.complex_index(i, j, kz), k.K, k.dk_l, k.dk_s,
                                                  detail::pgd_mode_weight(kz, nzc, even_z));
            s[0] += r[0];
            s[1] += r[1];
          }
          return s;
        },
        detail::pgd_rows_per_block);
  }

  std::shared_ptr<const FftPlan<T>> plan_;
  particles::CicPlan<T> points_;
  mesh::ForceKernelOptions kernel_;
  std::size_t mean_count_ = 0;
  double scale_ = 0.0;
  // real_: counts, then psi, then the adjoint's sum; scratch_: F_d, then the painted S_bar_d;
  // work_: the spectrum being filtered; counts_ (adjoint only): the counts' spectrum. The
  // half spectra are allocated on first use.
  mesh::RealField<T> real_, scratch_;
  mesh::ComplexField<T> work_, counts_;
};

}  // namespace diffpm::nbody
