// The forward models that Python holds, by id, and the runs recorded for a gradient, by handle:
// what lets a JAX custom call that ran the forward model hand its tape to the custom call of
// the vector-Jacobian product (docs/python.md, "State between the forward and the backward
// call").
//
// A diffpm.Model registers one ModelEntry under a fresh id and unregisters it when collected.
// forward(record = true) runs on a ForwardModel taken from the entry's pool, keeps it (with its
// tape) under a fresh run handle, and returns the handle; gradient(handle) replays that tape
// once and returns the ForwardModel to the pool. An entry keeps at most max_recorded runs: a
// newer recorded run evicts the oldest, whose gradient then fails with a clear error (never a
// wrong result). Ids and handles are never reused within a process.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace diffpm::python {

/// Shapes of the model's inputs and outputs (row-major), and its precision.
struct ModelShapes {
  std::array<std::size_t, 3> noise{};  ///< the particle lattice
  std::vector<std::size_t> kappa;      ///< (sources, pixels, pixels); empty without lensing
  std::vector<std::size_t> density;    ///< the force mesh; empty without final_density
  bool is_double = false;

  static std::size_t count(const std::vector<std::size_t>& s) {
    if (s.empty()) return 0;
    std::size_t n = 1;
    for (auto v : s) n *= v;
    return n;
  }
  std::size_t noise_count() const { return noise[0] * noise[1] * noise[2]; }
};

/// One registered model, precision-erased: pointers are to T (the model's float or double) unless
/// they are double by name. Thread-safe: runs of one entry are serialised with those of every
/// other entry (each run uses all of diffpm's OpenMP threads).
class ModelEntryBase {
 public:
  virtual ~ModelEntryBase() = default;
  const ModelShapes& shapes() const { return shapes_; }

  /// Runs the model at theta (the eight parameters in cosmology::Parameter order) on `noise`,
  /// writing kappa and density (null where the model has none). With `record`, returns the
  /// handle (> 0) of the recorded run; else 0.
  virtual std::uint64_t forward(const double* theta, const void* noise, void* kappa, void* density,
                                bool record) = 0;
  /// The gradient of the recorded run `handle` for dL/dkappa and dL/ddensity (null: zero or
  /// none): writes dL/dtheta (8 doubles), dL/dnoise and, if not null, dL/d(PGD parameters) (4
  /// doubles: alpha, k_l, k_s, mu). Consumes the run.
  virtual void gradient(std::uint64_t handle, const void* kappa_bar, const void* density_bar,
                        double* theta_bar, void* noise_bar, double* pgd_bar) = 0;
  /// Drops a recorded run without taking its gradient (no effect if it is not recorded).
  virtual void release(std::uint64_t handle) = 0;
  virtual std::size_t recorded_runs() const = 0;
  /// The C++ baseline of benchmarks/python/: `repeats` runs of forward + gradient of
  /// L = 1/2 sum (density - target)^2 on a model::ForwardModel of this entry's configuration
  /// (one for all calls), called directly (no registry, no copies); each run's wall time in
  /// seconds.
  virtual std::vector<double> time_density_loss(const double* theta, const void* noise,
                                                const void* target, int repeats) = 0;

 protected:
  ModelShapes shapes_;
};

/// Registers an entry; returns its id (> 0).
std::uint64_t register_model(std::shared_ptr<ModelEntryBase> entry);
/// Unregisters; recorded runs go with the entry once no call holds it.
void unregister_model(std::uint64_t id);
/// The entry of `id`; throws InvalidArgument if there is none (the model was collected).
std::shared_ptr<ModelEntryBase> find_model(std::uint64_t id);

}  // namespace diffpm::python
