/// \file
/// \brief FFTW3 plans for real-to-complex and complex-to-real 3D transforms (float, double).
#pragma once

#include <fftw3.h>

#include <complex>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"

namespace diffpm {

namespace detail {
/// FFTW's planner is not thread-safe (FFTW manual, "Thread safety"): every plan creation and
/// destruction in diffpm takes this lock. It only orders diffpm's own calls; a host program
/// that plans on other threads is covered by fftw_make_planner_thread_safe(), which
/// Fftw<T>::init_threads calls once per precision (FFTW >= 3.3.5).
inline std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

/// The fftw_ (double) and fftwf_ (float) APIs behind one name; other types fail to compile.
template <class T>
struct Fftw;

template <>
struct Fftw<double> {
  using plan = fftw_plan;
  using complex = fftw_complex;
  static void init_threads() {
    static std::once_flag once;
    std::call_once(once, [] {
      fftw_init_threads();
      fftw_make_planner_thread_safe();
    });
  }
  static int planner_nthreads() { return fftw_planner_nthreads(); }
  static void plan_with_nthreads(int n) { fftw_plan_with_nthreads(n); }
  static void* malloc(std::size_t bytes) { return fftw_malloc(bytes); }
  static void free(void* p) { fftw_free(p); }
  static plan r2c(const int* n, double* in, complex* out, unsigned flags) {
    return fftw_plan_dft_r2c(3, n, in, out, flags);
  }
  static plan c2r(const int* n, complex* in, double* out, unsigned flags) {
    return fftw_plan_dft_c2r(3, n, in, out, flags);
  }
  static void execute_r2c(plan p, double* in, complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void execute_c2r(plan p, complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftw_destroy_plan(p); }
};

template <>
struct Fftw<float> {
  using plan = fftwf_plan;
  using complex = fftwf_complex;
  static void init_threads() {
    static std::once_flag once;
    std::call_once(once, [] {
      fftwf_init_threads();
      fftwf_make_planner_thread_safe();
    });
  }
  static int planner_nthreads() { return fftwf_planner_nthreads(); }
  static void plan_with_nthreads(int n) { fftwf_plan_with_nthreads(n); }
  static void* malloc(std::size_t bytes) { return fftwf_malloc(bytes); }
  static void free(void* p) { fftwf_free(p); }
  static plan r2c(const int* n, float* in, complex* out, unsigned flags) {
    return fftwf_plan_dft_r2c(3, n, in, out, flags);
  }
  static plan c2r(const int* n, complex* in, float* out, unsigned flags) {
    return fftwf_plan_dft_c2r(3, n, in, out, flags);
  }
  static void execute_r2c(plan p, float* in, complex* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void execute_c2r(plan p, complex* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftwf_destroy_plan(p); }
};
}  // namespace detail

/// FFT plans for one Grid and precision, made once and reused at every step.
///
/// forward: the unnormalised DFT with e^{-ikx} (docs/conventions.md); inverse: the unnormalised
/// DFT with e^{+ikx}, so inverse(forward(x)) = N x. The caller applies 1/N where the
/// conventions need it (usually folded into a Fourier-space kernel).
///
/// Determinism. Plans use FFTW_ESTIMATE: FFTW_MEASURE may choose a different algorithm from one
/// run to the next, and then the same seed would not give bitwise the same result. FFTW_ESTIMATE
/// still uses any wisdom the process holds (FFTW manual, "Planner Flags"), so two plans of one
/// size made before and after a host program imports wisdom, or plans that size with
/// FFTW_MEASURE, may compute different bits. Whatever must be bitwise the same twice (the
/// forward and reverse pass of the exact integrator) executes one plan object: share it through
/// std::shared_ptr (Lpt, PmForce and model::ForwardModel do). The thread count is fixed when the
/// plan is made (default: the OpenMP thread count).
///
/// FFTW's global state is left as found: the planner's thread count (fftw_plan_with_nthreads)
/// is restored after planning, so a host program's own plans are not affected.
template <class T, class Backend = Cpu>
class FftPlan;

template <class T>
class FftPlan<T, Cpu> {
  using F = detail::Fftw<T>;

 public:
  explicit FftPlan(const mesh::Grid& grid, int threads = max_threads()) : grid_(grid) {
    grid.validate();
    // FFTW_ESTIMATE neither reads nor writes the arrays, but needs their alignment: plan on
    // fftw_malloc'd buffers (the alignment of every field, mesh/field.hpp) that are never
    // touched, so no page of them is committed.
    const std::size_t real_bytes = grid.size() * sizeof(T);
    const std::size_t complex_bytes = grid.complex_size() * 2 * sizeof(T);
    struct Buffer {
      void* p;
      ~Buffer() { F::free(p); }
    } r{F::malloc(real_bytes)}, c{F::malloc(complex_bytes)};
    if (!r.p || !c.p) {
      throw FftError("FFT plan: cannot allocate " +
                     std::to_string((real_bytes + complex_bytes) >> 20) +
                     " MiB to plan the FFT of " + grid.to_string());
    }
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    F::init_threads();
    const int host_threads = F::planner_nthreads();
    F::plan_with_nthreads(threads > 0 ? threads : 1);
    r2c_ = F::r2c(grid.n.data(), static_cast<T*>(r.p), static_cast<typename F::complex*>(c.p),
                  FFTW_ESTIMATE);
    c2r_ = F::c2r(grid.n.data(), static_cast<typename F::complex*>(c.p), static_cast<T*>(r.p),
                  FFTW_ESTIMATE);
    F::plan_with_nthreads(host_threads);
    if (!r2c_ || !c2r_) {
      if (r2c_) F::destroy(r2c_);
      if (c2r_) F::destroy(c2r_);
      throw FftError("FFTW could not make a plan for " + grid.to_string());
    }
  }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  ~FftPlan() {
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    F::destroy(r2c_);
    F::destroy(c2r_);
  }

  const mesh::Grid& grid() const { return grid_; }

  /// out = DFT(in) on the half spectrum. `in` is preserved.
  void forward(const mesh::RealField<T>& in, mesh::ComplexField<T>& out) const {
    check(in.grid, "forward input");
    check(out.grid, "forward output");
    // FFTW's out-of-place r2c does not write its input (FFTW manual, "Planner Flags").
    F::execute_r2c(r2c_, const_cast<T*>(in.data.data()),
                   reinterpret_cast<typename F::complex*>(out.data.data()));
  }

  /// out = unnormalised inverse DFT of the half spectrum `in`. FFTW's multi-dimensional c2r
  /// overwrites its input, so `in` is taken as scratch and left undefined.
  void inverse_destroying_input(mesh::ComplexField<T>& in, mesh::RealField<T>& out) const {
    check(in.grid, "inverse input");
    check(out.grid, "inverse output");
    F::execute_c2r(c2r_, reinterpret_cast<typename F::complex*>(in.data.data()), out.data.data());
  }

 private:
  void check(const mesh::Grid& g, const char* what) const {
    if (g != grid_) throw InvalidArgument(std::string("FFT plan: ") + what + " is on another mesh");
  }

  mesh::Grid grid_;
  typename F::plan r2c_ = nullptr;
  typename F::plan c2r_ = nullptr;
};

/// The plan behind a shared handle; throws InvalidArgument naming `who` if there is none.
template <class T>
const FftPlan<T>& require_plan(const std::shared_ptr<const FftPlan<T>>& plan, const char* who) {
  if (!plan) throw InvalidArgument(std::string(who) + ": no FFT plan (null shared_ptr)");
  return *plan;
}

}  // namespace diffpm
