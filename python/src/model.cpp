// diffpm.Model: model::ForwardModel (parameters, white noise) -> maps and/or density, and its
// gradient, through the registry that the JAX custom calls share (model_registry.hpp).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>

#include "common.hpp"
#include "configs.hpp"
#include "diffpm/model/forward_model.hpp"
#include "model_registry.hpp"
#include "parameters.hpp"

namespace diffpm::python {

namespace {

/// Serialises the runs of every model: each uses all of diffpm's OpenMP threads, and two at once
/// (two custom calls XLA schedules side by side) would only oversubscribe the cores.
std::mutex& run_mutex() {
  static std::mutex m;
  return m;
}

std::atomic<std::uint64_t>& next_handle() {
  static std::atomic<std::uint64_t> h{1};
  return h;
}

template <class T>
class ModelEntry final : public ModelEntryBase {
 public:
  ModelEntry(model::ModelConfig cfg, cosmology::Parameters<double> base, std::size_t max_recorded)
      : cfg_(std::move(cfg)), base_(base), max_recorded_(max_recorded) {
    if (max_recorded_ < 1) throw InvalidArgument("max_recorded = 0 (must be >= 1)");
    idle_.push_back(std::make_unique<model::ForwardModel<T>>(cfg_));  // validates cfg_
    const auto& s = cfg_.simulation;
    shapes_.noise = {std::size_t(s.particles[0]), std::size_t(s.particles[1]),
                     std::size_t(s.particles[2])};
    if (cfg_.lensing) {
      const auto p = std::size_t(cfg_.lensing->config.map.pixels);
      shapes_.kappa = {cfg_.lensing->sources.size(), p, p};
    }
    if (cfg_.final_density)
      shapes_.density = {std::size_t(s.mesh[0]), std::size_t(s.mesh[1]), std::size_t(s.mesh[2])};
    shapes_.is_double = std::is_same_v<T, double>;
  }

  mesh::Grid lattice() const { return mesh::Grid(cfg_.simulation.particles, cfg_.simulation.box); }

  std::uint64_t forward(const double* theta, const void* noise, void* kappa, void* density,
                        bool record) override {
    auto params = base_;
    for (int i = 0; i < cosmology::n_parameters; ++i)
      params[static_cast<cosmology::Parameter>(i)] = theta[i];
    mesh::RealField<T> w(lattice());
    std::copy_n(static_cast<const T*>(noise), w.data.size(), w.data.begin());

    auto m = acquire();
    try {
      const std::lock_guard<std::mutex> run(run_mutex());
      const auto& out =
          m->forward(params, w, record ? model::Recording::on : model::Recording::off);
      if (kappa) {
        T* k = static_cast<T*>(kappa);
        for (const auto& map : out.kappa) k = std::copy(map.data.begin(), map.data.end(), k);
      }
      if (density)
        std::copy(out.density.data.begin(), out.density.data.end(), static_cast<T*>(density));
    } catch (...) {
      restore(std::move(m));
      throw;
    }
    if (!record) {
      restore(std::move(m));
      return 0;
    }
    const std::uint64_t handle = next_handle()++;
    const std::lock_guard<std::mutex> lock(mutex_);
    recorded_[handle] = std::move(m);
    while (recorded_.size() > max_recorded_) recorded_.erase(recorded_.begin());  // the oldest
    return handle;
  }

  void gradient(std::uint64_t handle, const void* kappa_bar, const void* density_bar,
                double* theta_bar, void* noise_bar, double* pgd_bar) override {
    std::unique_ptr<model::ForwardModel<T>> m;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      auto it = recorded_.find(handle);
      if (it == recorded_.end()) {
        throw InvalidArgument(
            "model gradient: run " + std::to_string(handle) +
            " is not recorded (its gradient was taken already, or it was evicted by " +
            std::to_string(max_recorded_) +
            " newer recorded runs: raise max_recorded, or take each gradient sooner)");
      }
      m = std::move(it->second);
      recorded_.erase(it);
    }
    std::vector<lensing::Map<T>> kbar;
    if (cfg_.lensing) {
      const auto& geometry = cfg_.lensing->config.map;
      for (std::size_t s = 0; s < cfg_.lensing->sources.size(); ++s) {
        lensing::Map<T> map(geometry);
        if (kappa_bar) {
          std::copy_n(static_cast<const T*>(kappa_bar) + s * geometry.size(), geometry.size(),
                      map.data.begin());
        }
        kbar.push_back(std::move(map));
      }
    }
    mesh::RealField<T> dbar;
    if (cfg_.final_density && density_bar) {
      dbar = mesh::RealField<T>(mesh::Grid(cfg_.simulation.mesh, cfg_.simulation.box));
      std::copy_n(static_cast<const T*>(density_bar), dbar.data.size(), dbar.data.begin());
    }
    model::ModelGradient<T> g;
    try {
      const std::lock_guard<std::mutex> run(run_mutex());
      g = m->gradient(kbar, dbar);
    } catch (...) {
      restore(std::move(m));
      throw;
    }
    restore(std::move(m));
    std::copy(g.parameters.begin(), g.parameters.end(), theta_bar);
    std::copy(g.noise.data.begin(), g.noise.data.end(), static_cast<T*>(noise_bar));
    if (pgd_bar) {
      pgd_bar[0] = g.pgd.alpha;
      pgd_bar[1] = g.pgd.k_l;
      pgd_bar[2] = g.pgd.k_s;
      pgd_bar[3] = g.pgd.mu;
    }
  }

  void release(std::uint64_t handle) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    recorded_.erase(handle);
  }
  std::size_t recorded_runs() const override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return recorded_.size();
  }

  std::vector<double> time_density_loss(const double* theta, const void* noise, const void* target,
                                        int repeats) override {
    if (!cfg_.final_density) throw InvalidArgument("timing: the model has no final density");
    auto params = base_;
    for (int i = 0; i < cosmology::n_parameters; ++i)
      params[static_cast<cosmology::Parameter>(i)] = theta[i];
    mesh::RealField<T> w(lattice());
    std::copy_n(static_cast<const T*>(noise), w.data.size(), w.data.begin());
    const T* t = static_cast<const T*>(target);
    const std::lock_guard<std::mutex> run(run_mutex());
    // One model for every timing call, as the pool keeps one for the other paths.
    if (!timing_) timing_ = std::make_unique<model::ForwardModel<T>>(cfg_);
    auto& m = *timing_;
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      const auto& out = m.forward(params, w);
      mesh::RealField<T> bar(out.density.grid);
      for (std::size_t c = 0; c < bar.data.size(); ++c) bar.data[c] = out.density.data[c] - t[c];
      const auto g = m.gradient({}, bar);
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (!std::isfinite(g.parameters[0])) throw InvalidArgument("timing: gradient not finite");
    }
    return seconds;
  }

 private:
  /// An idle ForwardModel (plans made, nothing recorded), or a new one.
  std::unique_ptr<model::ForwardModel<T>> acquire() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto m = std::move(idle_.back());
        idle_.pop_back();
        return m;
      }
    }
    return std::make_unique<model::ForwardModel<T>>(cfg_);
  }
  /// Back to the pool; one idle model is kept (plans are cheap to make: FFTW_ESTIMATE), the
  /// others freed with whatever their last run kept.
  void restore(std::unique_ptr<model::ForwardModel<T>> m) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.empty()) idle_.push_back(std::move(m));
  }

  model::ModelConfig cfg_;
  cosmology::Parameters<double> base_;
  std::size_t max_recorded_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<model::ForwardModel<T>>> idle_;
  std::map<std::uint64_t, std::unique_ptr<model::ForwardModel<T>>> recorded_;
  std::unique_ptr<model::ForwardModel<T>> timing_;  ///< time_density_loss's
};

struct Registry {
  std::mutex mutex;
  std::map<std::uint64_t, std::shared_ptr<ModelEntryBase>> models;
  std::uint64_t next_id = 1;
};
Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: outlives every model at exit
  return *r;
}

/// The Python face of one registered model.
class PyModel {
 public:
  PyModel(std::shared_ptr<ModelEntryBase> entry, model::ModelConfig cfg,
          cosmology::Parameters<double> base)
      : entry_(std::move(entry)), cfg_(std::move(cfg)), base_(base), id_(register_model(entry_)) {}
  ~PyModel() { unregister_model(id_); }
  PyModel(const PyModel&) = delete;
  PyModel& operator=(const PyModel&) = delete;

  std::uint64_t id() const { return id_; }
  const ModelShapes& shapes() const { return entry_->shapes(); }
  const model::ModelConfig& config() const { return cfg_; }
  const cosmology::Parameters<double>& base() const { return base_; }
  std::uint64_t last_run() const { return last_run_; }
  ModelEntryBase& entry() { return *entry_; }
  void set_last_run(std::uint64_t h) { last_run_ = h; }

 private:
  std::shared_ptr<ModelEntryBase> entry_;
  model::ModelConfig cfg_;
  cosmology::Parameters<double> base_;
  std::uint64_t id_;
  std::uint64_t last_run_ = 0;
};

template <class T>
nb::dict forward_t(PyModel& self, const double* theta, In<T> noise, bool record) {
  const auto& s = self.shapes();
  require_shape(noise, {s.noise[0], s.noise[1], s.noise[2]}, "white_noise");
  std::vector<T> kappa(ModelShapes::count(s.kappa)), density(ModelShapes::count(s.density));
  std::uint64_t handle = 0;
  {
    nb::gil_scoped_release release;
    handle = self.entry().forward(theta, noise.data(), kappa.empty() ? nullptr : kappa.data(),
                                  density.empty() ? nullptr : density.data(), record);
  }
  if (record) self.set_last_run(handle);
  nb::dict d;
  if (!s.kappa.empty()) d["kappa"] = to_numpy<T>(std::move(kappa), s.kappa);
  if (!s.density.empty()) d["density"] = to_numpy<T>(std::move(density), s.density);
  d["run"] = handle;
  return d;
}

template <class T>
nb::dict gradient_t(PyModel& self, std::uint64_t run, nb::object kappa_bar,
                    nb::object density_bar) {
  const auto& s = self.shapes();
  std::optional<In<T>> kb, db;
  if (!kappa_bar.is_none()) {
    if (s.kappa.empty())
      throw InvalidArgument("model gradient: kappa_bar given, but the model has no lensing maps");
    kb = as_array<T>(kappa_bar);
    require_shape(*kb, s.kappa, "kappa_bar");
  }
  if (!density_bar.is_none()) {
    if (s.density.empty())
      throw InvalidArgument("model gradient: density_bar given, but final_density is off");
    db = as_array<T>(density_bar);
    require_shape(*db, s.density, "density_bar");
  }
  std::vector<double> theta_bar(cosmology::n_parameters), pgd_bar(4);
  std::vector<T> noise_bar(s.noise_count());
  {
    nb::gil_scoped_release release;
    self.entry().gradient(run, kb ? kb->data() : nullptr, db ? db->data() : nullptr,
                          theta_bar.data(), noise_bar.data(), pgd_bar.data());
  }
  nb::dict d;
  d["parameters"] = to_numpy<double>(std::move(theta_bar), {std::size_t(cosmology::n_parameters)});
  d["noise"] = to_numpy<T>(std::move(noise_bar), {s.noise[0], s.noise[1], s.noise[2]});
  d["pgd"] = to_numpy<double>(std::move(pgd_bar), {4});
  return d;
}

nb::object shape_or_none(const std::vector<std::size_t>& s) {
  if (s.empty()) return nb::none();
  nb::list l;
  for (auto v : s) l.append(v);
  return nb::tuple(l);
}

}  // namespace

std::uint64_t register_model(std::shared_ptr<ModelEntryBase> entry) {
  auto& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  const std::uint64_t id = r.next_id++;
  r.models[id] = std::move(entry);
  return id;
}

void unregister_model(std::uint64_t id) {
  std::shared_ptr<ModelEntryBase> keep;  // destroyed after the lock is released
  auto& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.models.find(id);
  if (it == r.models.end()) return;
  keep = std::move(it->second);
  r.models.erase(it);
}

std::shared_ptr<ModelEntryBase> find_model(std::uint64_t id) {
  auto& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.models.find(id);
  if (it == r.models.end()) {
    throw InvalidArgument("model " + std::to_string(id) +
                          " does not exist (its diffpm.Model was garbage-collected)");
  }
  return it->second;
}

void bind_model(nb::module_& m) {
  nb::class_<PyModel>(m, "Model",
                      "The differentiable forward model (theta, white noise) -> convergence maps "
                      "and/or the final density, with its exact gradient.")
      .def(
          "__init__",
          [](PyModel* self, const nbody::SimulationConfig& simulation,
             std::optional<lensing::LensingConfig> lens, nb::object sources, bool final_density,
             std::optional<nbody::PgdParameters> pgd, const std::string& precision,
             const std::string& adjoint, std::size_t checkpoint_every, std::size_t max_recorded,
             const std::string& transfer, nb::object base) {
            model::ModelConfig cfg;
            cfg.simulation = simulation;
            cfg.final_density = final_density;
            cfg.pgd = pgd;
            cfg.checkpoint_every = checkpoint_every;
            cfg.adjoint = cast_choice(nb::str(adjoint.c_str()), "adjoint",
                                      std::vector<std::pair<std::string, nbody::AdjointMode>>{
                                          {"reverse", nbody::AdjointMode::reverse},
                                          {"store", nbody::AdjointMode::store},
                                          {"checkpoint", nbody::AdjointMode::checkpoint}});
            cfg.cosmology.transfer = cast_choice(
                nb::str(transfer.c_str()), "transfer",
                std::vector<std::pair<std::string, cosmology::Transfer>>{
                    {"eisenstein_hu", cosmology::Transfer::eisenstein_hu},
                    {"eisenstein_hu_nowiggle", cosmology::Transfer::eisenstein_hu_nowiggle},
                    {"bbks", cosmology::Transfer::bbks}});
            if (lens) {
              if (sources.is_none())
                throw InvalidArgument(
                    "model: lensing without sources (one redshift or n(z) per map)");
              cfg.lensing = model::LensingSetup{*lens, to_sources(sources)};
            } else if (!sources.is_none()) {
              throw InvalidArgument("model: sources given without a LensingConfig (lensing=)");
            }
            const auto p = base.is_none() ? cosmology::Parameters<double>{} : to_parameters(base);
            std::shared_ptr<ModelEntryBase> entry;
            if (precision == "double" || precision == "float64") {
              entry = std::make_shared<ModelEntry<double>>(cfg, p, max_recorded);
            } else if (precision == "float" || precision == "float32") {
              entry = std::make_shared<ModelEntry<float>>(cfg, p, max_recorded);
            } else {
              throw InvalidArgument("precision = '" + precision +
                                    "' (expected 'float' or 'double')");
            }
            new (self) PyModel(std::move(entry), std::move(cfg), p);
          },
          nb::arg("config"), nb::arg("lensing") = nb::none(), nb::arg("sources") = nb::none(),
          nb::arg("final_density") = false, nb::arg("pgd") = nb::none(),
          nb::arg("precision") = "float", nb::arg("adjoint") = "reverse",
          nb::arg("checkpoint_every") = 8, nb::arg("max_recorded") = 8,
          nb::arg("transfer") = "eisenstein_hu", nb::arg("fixed") = nb::none(),
          "config: SimulationConfig; lensing: LensingConfig with sources (redshifts or "
          "SourceDistributions), and/or final_density=True; pgd: PgdParameters; precision "
          "'float' or 'double'; adjoint 'reverse' (memory flat in the steps), 'store' or "
          "'checkpoint'; max_recorded: recorded runs kept for their gradients; fixed: a "
          "Parameters whose T_CMB, N_eff and radiation every run uses (default Planck 2018).")
      .def_prop_ro("id", &PyModel::id, "The id under which JAX's custom calls find the model.")
      .def_prop_ro("dtype",
                   [](const PyModel& p) { return p.shapes().is_double ? "float64" : "float32"; })
      .def_prop_ro("noise_shape",
                   [](const PyModel& p) {
                     const auto& n = p.shapes().noise;
                     return nb::make_tuple(n[0], n[1], n[2]);
                   })
      .def_prop_ro("kappa_shape", [](const PyModel& p) { return shape_or_none(p.shapes().kappa); })
      .def_prop_ro("density_shape",
                   [](const PyModel& p) { return shape_or_none(p.shapes().density); })
      .def_prop_ro("has_pgd", [](const PyModel& p) { return bool(p.config().pgd); })
      .def_prop_ro("fixed", &PyModel::base,
                   "The Parameters whose T_CMB, N_eff and radiation every run uses.")
      .def_prop_ro("last_run", &PyModel::last_run,
                   "The handle of the last recorded forward run (0: none).")
      .def_prop_ro("recorded_runs", [](PyModel& p) { return p.entry().recorded_runs(); })
      .def(
          "white_noise",
          [](PyModel& self, std::uint64_t seed) -> nb::object {
            const auto& c = self.config().simulation;
            const mesh::Grid g(c.particles, c.box);
            if (self.shapes().is_double) {
              auto f = ic::white_noise<double>(g, seed);
              return nb::cast(to_numpy<double>(
                  std::move(f.data),
                  {self.shapes().noise[0], self.shapes().noise[1], self.shapes().noise[2]}));
            }
            auto f = ic::white_noise<float>(g, seed);
            return nb::cast(to_numpy<float>(
                std::move(f.data),
                {self.shapes().noise[0], self.shapes().noise[1], self.shapes().noise[2]}));
          },
          nb::arg("seed"), "The model's white noise of `seed` (diffpm.white_noise's).")
      .def(
          "forward",
          [](PyModel& self, nb::handle parameters, nb::handle noise, bool record) {
            const auto p = to_parameters(parameters, self.base());
            const auto& b = self.base();
            if (p.T_CMB != b.T_CMB || p.N_eff != b.N_eff || p.radiation != b.radiation) {
              throw InvalidArgument("model: parameters with T_CMB = " + format_number(p.T_CMB) +
                                    ", N_eff = " + format_number(p.N_eff) +
                                    ", radiation = " + (p.radiation ? "True" : "False") +
                                    "; the model's (fixed=) are " + format_number(b.T_CMB) + ", " +
                                    format_number(b.N_eff) + ", " +
                                    (b.radiation ? "True" : "False"));
            }
            cosmology::validate(p);
            double theta[cosmology::n_parameters];
            for (int i = 0; i < cosmology::n_parameters; ++i)
              theta[i] = p[static_cast<cosmology::Parameter>(i)];
            if (self.shapes().is_double)
              return forward_t<double>(self, theta, as_array<double>(noise), record);
            return forward_t<float>(self, theta, as_array<float>(noise), record);
          },
          nb::arg("parameters"), nb::arg("white_noise"), nb::arg("record") = true,
          "Runs the model. parameters: a Parameters, a dict of names, or the eight values in the "
          "order of diffpm.PARAMETERS (T_CMB, N_eff and radiation are the model's). Returns a "
          "dict with kappa (sources, pixels, pixels) and/or density (the force mesh), and run: "
          "the handle of the recorded run (0 with record=False).")
      .def(
          "gradient",
          [](PyModel& self, nb::object kappa_bar, nb::object density_bar,
             std::optional<std::uint64_t> run) {
            const std::uint64_t h = run ? *run : self.last_run();
            if (h == 0) {
              throw InvalidArgument(
                  "model gradient: no recorded run (call forward(..., record=True) first)");
            }
            if (self.shapes().is_double) return gradient_t<double>(self, h, kappa_bar, density_bar);
            return gradient_t<float>(self, h, kappa_bar, density_bar);
          },
          nb::arg("kappa_bar") = nb::none(), nb::arg("density_bar") = nb::none(),
          nb::arg("run") = nb::none(),
          "The gradient of a loss L given dL/dkappa and/or dL/ddensity of a recorded run (default: "
          "the last): dict of parameters (dL/dtheta, 8, NaN for Omega_k with lensing), noise "
          "(dL/dw on the lattice) and pgd (dL/d(alpha, k_l, k_s, mu)). Each run has one "
          "gradient.")
      .def(
          "_time_density_loss",
          [](PyModel& self, nb::handle parameters, nb::handle noise, nb::handle target,
             int repeats) {
            const auto p = to_parameters(parameters, self.base());
            double theta[cosmology::n_parameters];
            for (int i = 0; i < cosmology::n_parameters; ++i)
              theta[i] = p[static_cast<cosmology::Parameter>(i)];
            const auto& s = self.shapes();
            auto run = [&](auto zero) {
              using T = decltype(zero);
              const auto w = as_array<T>(noise);
              const auto t = as_array<T>(target);
              require_shape(w, {s.noise[0], s.noise[1], s.noise[2]}, "white_noise");
              require_shape(t, s.density, "target");
              nb::gil_scoped_release release;
              return self.entry().time_density_loss(theta, w.data(), t.data(), repeats);
            };
            return s.is_double ? run(0.0) : run(0.0f);
          },
          nb::arg("parameters"), nb::arg("white_noise"), nb::arg("target"), nb::arg("repeats"),
          "Benchmark baseline (benchmarks/python/): seconds of each of `repeats` forward + "
          "gradient runs of L = 1/2 sum (density - target)^2 in C++ alone.")
      .def(
          "release", [](PyModel& self, std::uint64_t run) { self.entry().release(run); },
          nb::arg("run"), "Drops a recorded run without taking its gradient.");
}

}  // namespace diffpm::python
