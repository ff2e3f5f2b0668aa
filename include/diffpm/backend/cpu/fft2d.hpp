/// \file
/// \brief FFTW3 plans for real-to-complex and complex-to-real 2D transforms of square maps.
#pragma once

#include <fftw3.h>

#include <complex>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"

namespace diffpm {

namespace detail {
/// Rank-2 plan creation; execution and destruction are rank-independent and come from Fftw<T>
/// (backend/cpu/fft.hpp), which also owns the planner lock and the one-time thread set-up.
template <class T>
struct Fftw2d;

template <>
struct Fftw2d<double> {
  static fftw_plan r2c(int n, double* in, fftw_complex* out, unsigned flags) {
    return fftw_plan_dft_r2c_2d(n, n, in, out, flags);
  }
  static fftw_plan c2r(int n, fftw_complex* in, double* out, unsigned flags) {
    return fftw_plan_dft_c2r_2d(n, n, in, out, flags);
  }
};

template <>
struct Fftw2d<float> {
  static fftwf_plan r2c(int n, float* in, fftwf_complex* out, unsigned flags) {
    return fftwf_plan_dft_r2c_2d(n, n, in, out, flags);
  }
  static fftwf_plan c2r(int n, fftwf_complex* in, float* out, unsigned flags) {
    return fftwf_plan_dft_c2r_2d(n, n, in, out, flags);
  }
};
}  // namespace detail

/// FFT plans for an n x n real map stored row-major, x fastest (maps::MapGeometry::index):
/// FFTW's first (slow) dimension is y, its last (halved) dimension is x. The half spectrum has
/// n rows (k_y index 0..n-1) of n/2 + 1 entries (k_x index 0..n/2), entry (k_y, k_x) at
/// k_y (n/2 + 1) + k_x.
///
/// Same conventions as FftPlan (backend/cpu/fft.hpp): forward is the unnormalised DFT with
/// e^{-i k x}, inverse the unnormalised DFT with e^{+i k x}, so inverse(forward(m)) = n^2 m.
/// Plans use FFTW_ESTIMATE (bitwise reproducible from run to run) and FFTW_UNALIGNED: maps keep
/// their pixels in a plain std::vector, whose alignment may differ from the buffer a plan was
/// made on, and FFTW's new-array execute functions require the same alignment unless the plan
/// was made with FFTW_UNALIGNED (FFTW manual, "New-array Execute Functions").
///
/// Threads: `threads` > 0 is used as given; the default (0) is one thread below
/// min_threaded_pixels per side and the OpenMP thread count above. A small map's transform takes
/// microseconds, less than waking and synchronising threads; and when ctest runs two such tests
/// at once on two cores, each process's spinning OpenMP threads wait for descheduled partners at
/// every barrier (seconds instead of milliseconds, measured with the Kaiser-Squires tests on
/// 64^2 maps).
template <class T>
class FftPlan2d {
  using F = detail::Fftw<T>;
  using Complex = typename F::complex;

 public:
  /// Below this many pixels per side, 2D FFTs and map loops run on one thread (see above).
  static constexpr int min_threaded_pixels = 512;

  explicit FftPlan2d(int n, int threads = 0) : n_(n) {
    if (n < 2 || n > 65536) {
      throw InvalidArgument("2D FFT plan: n = " + std::to_string(n) + " (must be in [2, 65536])");
    }
    mesh::AlignedVector<T> r(std::size_t(n) * n);
    mesh::AlignedVector<std::complex<T>> c(complex_size());
    const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    F::init_threads();
    if (threads <= 0) threads = n >= min_threaded_pixels ? max_threads() : 1;
    const int host_threads = F::planner_nthreads();  // restored: FFTW's state is the host's
    F::plan_with_nthreads(threads);
    r2c_ = detail::Fftw2d<T>::r2c(n, r.data(), reinterpret_cast<Complex*>(c.data()), flags);
    c2r_ = detail::Fftw2d<T>::c2r(n, reinterpret_cast<Complex*>(c.data()), r.data(), flags);
    F::plan_with_nthreads(host_threads);
    if (!r2c_ || !c2r_) {
      if (r2c_) F::destroy(r2c_);
      if (c2r_) F::destroy(c2r_);
      throw FftError("FFTW could not make a 2D plan for n = " + std::to_string(n));
    }
  }
  FftPlan2d(const FftPlan2d&) = delete;
  FftPlan2d& operator=(const FftPlan2d&) = delete;
  ~FftPlan2d() {
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    F::destroy(r2c_);
    F::destroy(c2r_);
  }

  int n() const { return n_; }
  /// Pixels of the real map, n^2.
  std::size_t real_size() const { return std::size_t(n_) * n_; }
  /// Entries of the half spectrum, n (n/2 + 1).
  std::size_t complex_size() const { return std::size_t(n_) * (n_ / 2 + 1); }

  /// out[0 .. complex_size()) = DFT(in[0 .. n^2)). `in` is preserved (FFTW's out-of-place r2c
  /// does not write its input; FFTW manual, "Planner Flags").
  void forward(const T* in, std::complex<T>* out) const {
    F::execute_r2c(r2c_, const_cast<T*>(in), reinterpret_cast<Complex*>(out));
  }

  /// out = unnormalised inverse DFT of the half spectrum `in`, which FFTW's multi-dimensional
  /// c2r overwrites: `in` is scratch and left undefined. `in` must be Hermitian on the columns
  /// k_x = 0 and k_x = n/2 (even n), which hold both members of each conjugate pair; c2r
  /// silently uses only one of them otherwise.
  void inverse_destroying_input(std::complex<T>* in, T* out) const {
    F::execute_c2r(c2r_, reinterpret_cast<Complex*>(in), out);
  }

 private:
  int n_;
  typename F::plan r2c_ = nullptr;
  typename F::plan c2r_ = nullptr;
};

}  // namespace diffpm
