/// \file
/// \brief Kaiser-Squires: shear from convergence and E/B convergence from shear on a periodic
/// flat map, in Fourier space, with the adjoint (transpose) of each.
///
/// With the lensing potential psi, kappa = (psi_,11 + psi_,22) / 2, gamma1 = (psi_,11 -
/// psi_,22) / 2, gamma2 = psi_,12 (Bartelmann & Schneider 2001, Phys. Rep. 340, 291, sec. 3.1),
/// axes 1 = theta_x (pixel x) and 2 = theta_y (pixel y). In Fourier space (Kaiser & Squires
/// 1993, ApJ 404, 441, sec. 2, written with ell):
///   gamma_m = D(ell_m) kappa_m,  D = [(l_1^2 - l_2^2) + 2 i l_1 l_2] / l^2 = e^{2 i phi},
/// so gamma1_m = c1 kappa_m and gamma2_m = c2 kappa_m with c1 = cos 2 phi, c2 = sin 2 phi (real,
/// even in ell: each component is a real map). The inverse takes D* = e^{-2 i phi}:
///   (kappa_E + i kappa_B)_m = D*(gamma1_m + i gamma2_m)
///   =>  kappa_E,m = c1 gamma1_m + c2 gamma2_m,  kappa_B,m = -c2 gamma1_m + c1 gamma2_m.
/// The ell = 0 mode (the mean) is not determined by the shear and is set to 0 in all four maps.
///
/// Nyquist modes (even n). On the periodic grid ell_x = +pi n / L and -pi n / L are one mode, and
/// c2 is odd in ell_x, so a choice must be made for the column k_x = n/2 of the half spectrum,
/// which holds both members of each conjugate pair (m_y, -m_y). There, ell_x takes the sign of
/// ell_y (ell_x ell_y >= 0): the pair gets wavevectors ell and -ell, c1 and c2 are the same for
/// both members (a real output map), and c1^2 + c2^2 = 1 still holds. Elsewhere the half
/// spectrum's own representative is used (k_x >= 0, m_y in [-n/2, n/2)), whose implicit
/// conjugate is -ell. Every mode thus gets a unit-modulus D: both transforms are orthogonal on
/// zero-mean maps, the inverse undoes the forward exactly (kappa_E = kappa - mean, kappa_B = 0),
/// and shape noise keeps its power through them.
///
/// Adjoints. Each transform is a sum of terms R_c = (1/N_pix) inverse-DFT o c o DFT with c a real
/// multiplier that is the same on both members of every conjugate pair; such an R_c is symmetric
/// (R_c^T = (1/N_pix) inverse-DFT o conj(c) o DFT, mesh/fourier_kernels.hpp). Hence
///   forward:  (gamma1, gamma2) = (R_c1 kappa, R_c2 kappa)
///             adjoint: kappa_bar = R_c1 gamma1_bar + R_c2 gamma2_bar
///   inverse:  (kappa_E, kappa_B) = (R_c1 g1 + R_c2 g2, -R_c2 g1 + R_c1 g2)
///             adjoint: g1_bar = R_c1 E_bar - R_c2 B_bar,  g2_bar = R_c2 E_bar + R_c1 B_bar.
/// tests/lensing/test_kaiser_squires.cpp checks each pair with dot-product tests.
#pragma once

#include <complex>
#include <cstddef>
#include <string>
#include <type_traits>

#include "diffpm/backend/cpu/fft2d.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/lensing/flat_map.hpp"
#include "diffpm/mesh/field.hpp"

namespace diffpm::lensing {

/// The Kaiser-Squires multipliers of one half-spectrum entry: gamma1 = c1 kappa, gamma2 =
/// c2 kappa (file comment).
struct ShearSymbol {
  double c1 = 0.0;  ///< cos 2 phi = (l_x^2 - l_y^2) / l^2
  double c2 = 0.0;  ///< sin 2 phi = 2 l_x l_y / l^2
};

/// The multipliers of half-spectrum entry (k_y row, k_x column) of an n x n map, with the
/// Nyquist rule of the file comment; (0, 0) for the zero mode. Integer frequencies (the 2 pi / L
/// cancels), exact in double for n <= 65536.
DIFFPM_HOST_DEVICE inline ShearSymbol shear_symbol(int ky, int kx, int n) {
  const double my = detail::signed_frequency(ky, n);
  double mx = kx;
  if (n % 2 == 0 && kx == n / 2 && my < 0) mx = -mx;  // the Nyquist column: l_x l_y >= 0
  const double l2 = mx * mx + my * my;
  if (l2 == 0.0) return ShearSymbol{};
  return ShearSymbol{(mx * mx - my * my) / l2, 2.0 * mx * my / l2};
}

/// Kaiser-Squires transforms on one map geometry, with the FFT plans they need (made once,
/// reused by every call; not thread-safe to call concurrently on one object).
///
/// Outputs are resized to the plan's geometry; inputs must have it (InvalidArgument otherwise).
/// All inputs are transformed before any output is written, so an output may be the same map
/// as an input.
template <class T>
class KaiserSquires {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "KaiserSquires: float or double maps");
  using Spectrum = mesh::AlignedVector<std::complex<T>>;

 public:
  /// `threads`: for the FFTs and the mode loop; 0 chooses as FftPlan2d does (one thread below
  /// FftPlan2d<T>::min_threaded_pixels per side, the OpenMP thread count above).
  explicit KaiserSquires(const MapGeometry& geometry, int threads = 0)
      : geometry_(geometry),
        plan_((geometry.validate(), geometry.pixels), threads),
        threads_(threads > 0                                            ? threads
                 : geometry.pixels >= FftPlan2d<T>::min_threaded_pixels ? max_threads()
                                                                        : 1) {}

  const MapGeometry& geometry() const { return geometry_; }

  /// gamma1 = R_c1 kappa, gamma2 = R_c2 kappa (Kaiser & Squires 1993).
  void shear_from_convergence(const Map<T>& kappa, Map<T>& gamma1, Map<T>& gamma2) const {
    transform_in(kappa, "kappa", a_);
    apply_out(gamma1, [](ShearSymbol s, std::complex<T> k) { return T(s.c1) * k; });
    apply_out(gamma2, [](ShearSymbol s, std::complex<T> k) { return T(s.c2) * k; });
  }

  /// The transpose of shear_from_convergence: kappa_bar = R_c1 gamma1_bar + R_c2 gamma2_bar.
  void shear_from_convergence_adjoint(const Map<T>& gamma1_bar, const Map<T>& gamma2_bar,
                                      Map<T>& kappa_bar) const {
    transform_in(gamma1_bar, "gamma1_bar", a_);
    transform_in(gamma2_bar, "gamma2_bar", b_);
    apply_out(kappa_bar, [](ShearSymbol s, std::complex<T> g1, std::complex<T> g2) {
      return T(s.c1) * g1 + T(s.c2) * g2;
    });
  }

  /// kappa_E = R_c1 gamma1 + R_c2 gamma2, kappa_B = -R_c2 gamma1 + R_c1 gamma2.
  void convergence_from_shear(const Map<T>& gamma1, const Map<T>& gamma2, Map<T>& kappa_e,
                              Map<T>& kappa_b) const {
    transform_in(gamma1, "gamma1", a_);
    transform_in(gamma2, "gamma2", b_);
    apply_out(kappa_e, [](ShearSymbol s, std::complex<T> g1, std::complex<T> g2) {
      return T(s.c1) * g1 + T(s.c2) * g2;
    });
    apply_out(kappa_b, [](ShearSymbol s, std::complex<T> g1, std::complex<T> g2) {
      return T(s.c1) * g2 - T(s.c2) * g1;
    });
  }

  /// The transpose of convergence_from_shear: gamma1_bar = R_c1 E_bar - R_c2 B_bar,
  /// gamma2_bar = R_c2 E_bar + R_c1 B_bar.
  void convergence_from_shear_adjoint(const Map<T>& kappa_e_bar, const Map<T>& kappa_b_bar,
                                      Map<T>& gamma1_bar, Map<T>& gamma2_bar) const {
    transform_in(kappa_e_bar, "kappa_e_bar", a_);
    transform_in(kappa_b_bar, "kappa_b_bar", b_);
    apply_out(gamma1_bar, [](ShearSymbol s, std::complex<T> e, std::complex<T> b) {
      return T(s.c1) * e - T(s.c2) * b;
    });
    apply_out(gamma2_bar, [](ShearSymbol s, std::complex<T> e, std::complex<T> b) {
      return T(s.c2) * e + T(s.c1) * b;
    });
  }

 private:
  void transform_in(const Map<T>& in, const char* name, Spectrum& out) const {
    if (in.geometry != geometry_ || in.data.size() != geometry_.size()) {
      throw InvalidArgument(std::string("Kaiser-Squires: ") + name + " is " +
                            std::to_string(in.geometry.pixels) + "^2 pixels on " +
                            format_number(in.geometry.fov_deg) + " deg with " +
                            std::to_string(in.data.size()) + " values, the plan is for " +
                            std::to_string(geometry_.pixels) + "^2 pixels on " +
                            format_number(geometry_.fov_deg) + " deg");
    }
    out.resize(plan_.complex_size());
    plan_.forward(in.data.data(), out.data());
  }

  /// out = (1/N_pix) inverse-DFT of kernel(symbol, a_[m] (, b_[m])) over the half spectrum.
  template <class Kernel>
  void apply_out(Map<T>& out, Kernel kernel) const {
    const int n = geometry_.pixels, nxc = n / 2 + 1;
    const T scale = T(1.0 / double(geometry_.size()));
    scratch_.resize(plan_.complex_size());
    DIFFPM_OMP(omp parallel for schedule(static) num_threads(threads_))
    for (int ky = 0; ky < n; ++ky) {
      for (int kx = 0; kx < nxc; ++kx) {
        const std::size_t m = std::size_t(ky) * nxc + kx;
        const ShearSymbol s = shear_symbol(ky, kx, n);
        if constexpr (std::is_invocable_v<Kernel, ShearSymbol, std::complex<T>>) {
          scratch_[m] = scale * kernel(s, a_[m]);
        } else {
          scratch_[m] = scale * kernel(s, a_[m], b_[m]);
        }
      }
    }
    if (out.geometry != geometry_ || out.data.size() != geometry_.size()) out = Map<T>(geometry_);
    plan_.inverse_destroying_input(scratch_.data(), out.data.data());
  }

  MapGeometry geometry_;
  FftPlan2d<T> plan_;
  int threads_;
  mutable Spectrum a_, b_, scratch_;  // buffers reused between calls
};

/// One-shot shear_from_convergence (makes the plan; use KaiserSquires to reuse it).
template <class T>
void shear_from_convergence(const Map<T>& kappa, Map<T>& gamma1, Map<T>& gamma2) {
  KaiserSquires<T>(kappa.geometry).shear_from_convergence(kappa, gamma1, gamma2);
}

/// One-shot convergence_from_shear (makes the plan; use KaiserSquires to reuse it).
template <class T>
void convergence_from_shear(const Map<T>& gamma1, const Map<T>& gamma2, Map<T>& kappa_e,
                            Map<T>& kappa_b) {
  KaiserSquires<T>(gamma1.geometry).convergence_from_shear(gamma1, gamma2, kappa_e, kappa_b);
}

}  // namespace diffpm::lensing
