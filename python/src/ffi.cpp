// XLA FFI handlers of the forward model and its vector-Jacobian product, for diffpm.jax (which
// registers them with jax.ffi.register_ffi_target and ties them with jax.custom_vjp).
//
//   diffpm_model_forward(theta[8], noise[lattice]; model_id, record, nan_on_failure)
//       -> kappa[sources, pixels, pixels] (or [1]), density[mesh] (or [1]), run[2] (uint32)
//   diffpm_model_backward(run[2], kappa_bar, density_bar; model_id, nan_on_failure)
//       -> theta_bar[8], noise_bar[lattice]
//
// theta is float32 or float64 (converted to double); noise, maps and density are the model's
// precision. run is the recorded run's handle, low and high 32 bits (JAX without x64 has no
// 64-bit integers), 0 with record = 0. Errors reach JAX as INVALID_ARGUMENT (bad input, with
// diffpm's message) or INTERNAL. With nan_on_failure, a point the model refuses (InvalidArgument
// or OutOfRange from the run: a parameter out of range, a particle drifting beyond what the
// fixed-point state holds) gives NaN outputs and, in the backward call, NaN cotangents instead
// of an error: what a sampler needs to reject the point (infinite energy) rather than stop.
// Shapes and dtypes are still errors, and so is a ReversibilityError.
#include <xla/ffi/api/ffi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>

#include "common.hpp"
#include "model_registry.hpp"

namespace diffpm::python {

namespace ffi = xla::ffi;

namespace {

/// Runs `f`, turning what it throws into an ffi::Error.
template <class F>
ffi::Error guarded(F&& f) {
  try {
    f();
    return ffi::Error::Success();
  } catch (const std::invalid_argument& e) {
    return ffi::Error::InvalidArgument(e.what());
  } catch (const std::exception& e) {
    return ffi::Error::Internal(e.what());
  } catch (...) {
    return ffi::Error::Internal("diffpm: unexpected internal error");
  }
}

void require_count(const ffi::AnyBuffer& b, std::size_t n, const char* what) {
  if (b.element_count() != n) {
    throw InvalidArgument(std::string(what) + " has " + std::to_string(b.element_count()) +
                          " elements, the model expects " + std::to_string(n));
  }
}

void require_type(const ffi::AnyBuffer& b, bool is_double, const char* what) {
  const auto want = is_double ? ffi::DataType::F64 : ffi::DataType::F32;
  if (b.element_type() != want) {
    throw InvalidArgument(std::string(what) + ": wrong dtype, the model is " +
                          (is_double ? "float64" : "float32"));
  }
}

void read_theta(const ffi::AnyBuffer& b, double* theta) {
  require_count(b, 8, "theta");
  if (b.element_type() == ffi::DataType::F64) {
    const double* t = static_cast<const double*>(b.untyped_data());
    for (int i = 0; i < 8; ++i) theta[i] = t[i];
  } else if (b.element_type() == ffi::DataType::F32) {
    const float* t = static_cast<const float*>(b.untyped_data());
    for (int i = 0; i < 8; ++i) theta[i] = t[i];
  } else {
    throw InvalidArgument("theta: dtype must be float32 or float64");
  }
}

void fill_nan(ffi::AnyBuffer& b) {
  if (b.element_type() == ffi::DataType::F64) {
    double* p = static_cast<double*>(b.untyped_data());
    std::fill(p, p + b.element_count(), std::numeric_limits<double>::quiet_NaN());
  } else if (b.element_type() == ffi::DataType::F32) {
    float* p = static_cast<float*>(b.untyped_data());
    std::fill(p, p + b.element_count(), std::numeric_limits<float>::quiet_NaN());
  }
}

ffi::Error model_forward(std::int64_t model_id, std::int64_t record, std::int64_t nan_on_failure,
                         ffi::AnyBuffer theta, ffi::AnyBuffer noise,
                         ffi::Result<ffi::AnyBuffer> kappa, ffi::Result<ffi::AnyBuffer> density,
                         ffi::Result<ffi::Buffer<ffi::U32>> run) {
  return guarded([&] {
    auto entry = find_model(std::uint64_t(model_id));
    const auto& s = entry->shapes();
    double t[8];
    read_theta(theta, t);
    require_type(noise, s.is_double, "white noise");
    require_count(noise, s.noise_count(), "white noise");
    require_count(*kappa, std::max<std::size_t>(ModelShapes::count(s.kappa), 1), "kappa");
    require_count(*density, std::max<std::size_t>(ModelShapes::count(s.density), 1), "density");
    if (run->element_count() != 2) throw InvalidArgument("run: expected 2 uint32");
    std::uint64_t h = 0;
    try {
      h = entry->forward(t, noise.untyped_data(), s.kappa.empty() ? nullptr : kappa->untyped_data(),
                         s.density.empty() ? nullptr : density->untyped_data(), record != 0);
      // Outputs the model does not have are one zero (XLA buffers are not zero-initialised).
      if (s.kappa.empty()) std::memset(kappa->untyped_data(), 0, kappa->size_bytes());
      if (s.density.empty()) std::memset(density->untyped_data(), 0, density->size_bytes());
    } catch (const std::exception& e) {
      const bool refused = dynamic_cast<const InvalidArgument*>(&e) != nullptr ||
                           dynamic_cast<const OutOfRange*>(&e) != nullptr;
      if (!nan_on_failure || !refused) throw;
      fill_nan(*kappa);
      fill_nan(*density);
      h = 0;  // nothing recorded: the backward call gives NaN
    }
    run->typed_data()[0] = std::uint32_t(h & 0xffffffffu);
    run->typed_data()[1] = std::uint32_t(h >> 32);
  });
}

ffi::Error model_backward(std::int64_t model_id, std::int64_t nan_on_failure,
                          ffi::Buffer<ffi::U32> run, ffi::AnyBuffer kappa_bar,
                          ffi::AnyBuffer density_bar, ffi::Result<ffi::AnyBuffer> theta_bar,
                          ffi::Result<ffi::AnyBuffer> noise_bar) {
  return guarded([&] {
    auto entry = find_model(std::uint64_t(model_id));
    const auto& s = entry->shapes();
    if (run.element_count() != 2) throw InvalidArgument("run: expected 2 uint32");
    const std::uint64_t h =
        std::uint64_t(run.typed_data()[0]) | (std::uint64_t(run.typed_data()[1]) << 32);
    if (h == 0) {
      if (!nan_on_failure) {
        throw InvalidArgument(
            "model gradient: the forward call did not record its run (internal: record = 0)");
      }
      fill_nan(*theta_bar);  // the forward call refused the point (nan_on_failure)
      fill_nan(*noise_bar);
      return;
    }
    if (!s.kappa.empty()) {
      require_type(kappa_bar, s.is_double, "kappa cotangent");
      require_count(kappa_bar, ModelShapes::count(s.kappa), "kappa cotangent");
    }
    if (!s.density.empty()) {
      require_type(density_bar, s.is_double, "density cotangent");
      require_count(density_bar, ModelShapes::count(s.density), "density cotangent");
    }
    require_type(*noise_bar, s.is_double, "noise cotangent");
    require_count(*noise_bar, s.noise_count(), "noise cotangent");
    require_count(*theta_bar, 8, "theta cotangent");
    double tb[8];
    entry->gradient(h, s.kappa.empty() ? nullptr : kappa_bar.untyped_data(),
                    s.density.empty() ? nullptr : density_bar.untyped_data(), tb,
                    noise_bar->untyped_data(), nullptr);
    if (theta_bar->element_type() == ffi::DataType::F64) {
      double* out = static_cast<double*>(theta_bar->untyped_data());
      for (int i = 0; i < 8; ++i) out[i] = tb[i];
    } else if (theta_bar->element_type() == ffi::DataType::F32) {
      float* out = static_cast<float*>(theta_bar->untyped_data());
      for (int i = 0; i < 8; ++i) out[i] = float(tb[i]);
    } else {
      throw InvalidArgument("theta cotangent: dtype must be float32 or float64");
    }
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffpmModelForward, model_forward,
                              ffi::Ffi::Bind()
                                  .Attr<std::int64_t>("model_id")
                                  .Attr<std::int64_t>("record")
                                  .Attr<std::int64_t>("nan_on_failure")
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::U32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffpmModelBackward, model_backward,
                              ffi::Ffi::Bind()
                                  .Attr<std::int64_t>("model_id")
                                  .Attr<std::int64_t>("nan_on_failure")
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>());

void bind_ffi(nb::module_& m) {
  m.def(
      "ffi_targets",
      [] {
        nb::dict d;
        d["diffpm_model_forward"] = nb::capsule(reinterpret_cast<void*>(DiffpmModelForward));
        d["diffpm_model_backward"] = nb::capsule(reinterpret_cast<void*>(DiffpmModelBackward));
        return d;
      },
      "The XLA FFI handlers (name -> PyCapsule) that diffpm.jax registers for the CPU.");
}

}  // namespace diffpm::python
