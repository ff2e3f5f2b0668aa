// diffpm.SimulationConfig, LensingConfig, SourceDistribution, PgdParameters, and the forward
// runs: white noise, a PM simulation (particles, linear field), CIC density, power spectrum,
// lensing maps.
#include "diffpm/nbody/simulation.hpp"

#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <complex>

#include "common.hpp"
#include "configs.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/measure/power_spectrum.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/particles/cic.hpp"
#include "parameters.hpp"

namespace diffpm::python {

namespace {

using nbody::SimulationConfig;

template <class T>
mesh::RealField<T> field_from(In<T> a, const mesh::Grid& grid, const std::string& what) {
  require_shape(a, {std::size_t(grid.n[0]), std::size_t(grid.n[1]), std::size_t(grid.n[2])}, what);
  mesh::RealField<T> f(grid);
  std::copy(a.data(), a.data() + a.size(), f.data.begin());
  return f;
}

template <class T>
nb::ndarray<nb::numpy, T> field_to(mesh::RealField<T>&& f) {
  const auto n = f.grid.n;
  return to_numpy<T>(std::move(f.data), {std::size_t(n[0]), std::size_t(n[1]), std::size_t(n[2])});
}

template <class T>
nb::ndarray<nb::numpy, T> vectors_to(std::vector<std::array<T, 3>>&& v) {
  const std::size_t n = v.size();
  return to_numpy<T>(std::move(v), {n, 3});
}

template <class T>
nb::ndarray<nb::numpy, std::complex<T>> spectrum_to(mesh::ComplexField<T>&& f) {
  const auto& g = f.grid;
  return to_numpy<std::complex<T>>(
      std::move(f.data), {std::size_t(g.n[0]), std::size_t(g.n[1]), std::size_t(g.complex_nz())});
}

template <class T>
nb::ndarray<nb::numpy, T> maps_to(std::vector<lensing::Map<T>>&& maps) {
  const std::size_t s = maps.size();
  const std::size_t p = s ? std::size_t(maps.front().geometry.pixels) : 0;
  std::vector<T> all;
  all.reserve(s * p * p);
  for (const auto& m : maps) all.insert(all.end(), m.data.begin(), m.data.end());
  return to_numpy<T>(std::move(all), {s, p, p});
}

/// The caller's white noise on cfg's lattice, or none (the run takes cfg.seed's).
template <class T>
std::optional<mesh::RealField<T>> white_noise_or_seed(nb::object noise,
                                                      const SimulationConfig& cfg) {
  if (noise.is_none()) return std::nullopt;
  return field_from<T>(as_array<T>(noise), mesh::Grid(cfg.particles, cfg.box), "white_noise");
}

/// The simulation's result as a dict of arrays (no copies).
template <class T>
nb::dict result_dict(nbody::SimulationResult<T>&& r) {
  nb::dict d;
  d["positions"] = vectors_to<T>(std::move(r.state.x));
  d["momenta"] = vectors_to<T>(std::move(r.state.p));
  d["delta_linear"] = spectrum_to<T>(std::move(r.delta_linear));
  return d;
}

template <class T>
nb::dict simulate_t(const cosmology::Parameters<double>& params, const SimulationConfig& cfg,
                    nb::object noise, const std::optional<nbody::PgdParameters>& pgd) {
  cosmology::validate(params);
  cfg.validate();
  if (pgd) pgd->validate("pgd");  // before the run, not after it
  const auto w = white_noise_or_seed<T>(noise, cfg);
  nbody::SimulationResult<T> r;
  {
    nb::gil_scoped_release release;
    const cosmology::Cosmology<double> cosmo(params);
    r = w ? nbody::run_simulation<T>(cosmo, cfg, *w) : nbody::run_simulation<T>(cosmo, cfg);
    if (pgd) {
      mesh::ForceKernelOptions kernel = cfg.kernel;
      kernel.smoothing_scale = 0.0;
      nbody::PgdCorrection<T> correction(mesh::Grid(cfg.mesh, cfg.box), kernel, 0,
                                         cfg.threads > 0 ? cfg.threads : max_threads());
      particles::Positions<T> y;
      correction.apply(r.state.x, *pgd, cfg.a_end, y);
      r.state.x = std::move(y);
    }
  }
  return result_dict<T>(std::move(r));
}

template <class T>
nb::ndarray<nb::numpy, T> paint_t(In<T> positions, std::array<double, 3> box,
                                  std::array<int, 3> n) {
  if (positions.ndim() != 2 || positions.shape(1) != 3 || positions.shape(0) == 0) {
    throw InvalidArgument("positions: expected an array of shape (N, 3) with N > 0");
  }
  const mesh::Grid grid(n, box);
  grid.validate();
  const std::size_t count = positions.shape(0);
  particles::Positions<T> x(count);
  std::copy(positions.data(), positions.data() + 3 * count, x.data()->data());
  for (std::size_t i = 0; i < count; ++i) {
    for (int d = 0; d < 3; ++d) {
      if (!std::isfinite(double(x[i][d]))) {
        throw InvalidArgument("positions[" + std::to_string(i) + ", " + std::to_string(d) +
                              "] = " + format_number(double(x[i][d])) + " (must be finite)");
      }
    }
  }
  mesh::RealField<T> delta(grid);
  {
    nb::gil_scoped_release release;
    particles::paint_cic(x, delta);
    const T norm = T(double(grid.size()) / double(count));
    for (auto& v : delta.data) v = v * norm - T(1);
  }
  return field_to<T>(std::move(delta));
}

template <class T>
nb::dict power_t(In<T> delta, std::array<double, 3> box, bool deconvolve_cic,
                 std::optional<double> k_min, std::optional<double> k_max,
                 std::optional<double> bin_width, std::optional<int> n_bins, bool logarithmic,
                 std::optional<double> shot_noise_particles) {
  if (delta.ndim() != 3) throw InvalidArgument("delta: expected a 3-d array");
  const mesh::Grid grid({int(delta.shape(0)), int(delta.shape(1)), int(delta.shape(2))}, box);
  grid.validate();
  auto field = field_from<T>(delta, grid, "delta");
  measure::PowerSpectrumOptions po;
  po.deconvolve_cic = deconvolve_cic;
  po.k_min = k_min;
  po.k_max = k_max;
  po.bin_width = bin_width;
  po.n_bins = n_bins;
  po.spacing = logarithmic ? measure::BinSpacing::logarithmic : measure::BinSpacing::linear;
  po.shot_noise_particle_count = shot_noise_particles;
  measure::PowerSpectrum P;
  {
    nb::gil_scoped_release release;
    FftPlan<T> plan(grid, max_threads());
    P = measure::measure_power(field, plan, po);
  }
  nb::dict d;
  const std::size_t nb_ = P.size();
  d["k_edges"] = to_numpy<double>(std::move(P.k_edges), {nb_ + 1});
  d["k"] = to_numpy<double>(std::move(P.k_mean), {nb_});
  d["power"] = to_numpy<double>(std::move(P.power), {nb_});
  d["n_modes"] = to_numpy<std::int64_t>(std::move(P.n_modes), {nb_});
  return d;
}

template <class T>
nb::dict lensing_t(const cosmology::Parameters<double>& params, const SimulationConfig& cfg,
                   const lensing::LensingConfig& lens, nb::handle sources, nb::object noise) {
  cosmology::validate(params);
  cfg.validate();
  const auto src = to_sources(sources);
  const auto w = white_noise_or_seed<T>(noise, cfg);
  lensing::LensingResult<T> r;
  {
    nb::gil_scoped_release release;
    const cosmology::Cosmology<double> cosmo(params);
    r = w ? lensing::run_lensing_simulation<T>(cosmo, cfg, *w, lens, src)
          : lensing::run_lensing_simulation<T>(cosmo, cfg, lens, src);
  }
  nb::dict d = result_dict<T>(std::move(r.simulation));
  d["kappa"] = maps_to<T>(std::move(r.kappa));
  const std::size_t planes = r.shells.chi.size();
  d["plane_chi"] = to_numpy<double>(std::move(r.shells.chi), {planes});
  d["plane_a"] = to_numpy<double>(std::move(r.shells.a), {planes});
  return d;
}

bool is_double(const std::string& precision) {
  if (precision == "float" || precision == "float32") return false;
  if (precision == "double" || precision == "float64") return true;
  throw InvalidArgument("precision = '" + precision + "' (expected 'float' or 'double')");
}

}  // namespace

void bind_simulation(nb::module_& m) {
  auto sim = nb::class_<SimulationConfig>(
      m, "SimulationConfig",
      "Box (Mpc/h), particle lattice, force mesh, time steps and integrator of a PM run. "
      "box, particles and mesh take one value or three.");
  simulation_table().bind(sim);
  sim.def("validate", &SimulationConfig::validate,
          "Raises ValueError naming the setting if the configuration is inconsistent.");

  auto lens = nb::class_<lensing::LensingConfig>(
      m, "LensingConfig",
      "The lightcone and its maps: pixels and fov_deg of the square map, the number of planes "
      "(shells to the farthest source), their comoving cell (0: the force mesh's), replica "
      "shifts and orientations.");
  lensing_table().bind(lens);
  lens.def("validate", &lensing::LensingConfig::validate);

  auto pgd = nb::class_<nbody::PgdParameters>(
      m, "PgdParameters",
      "The PGD small-scale correction (Dai, Feng & Seljak 2018): alpha (at a = 1), k_l and k_s "
      "(h/Mpc), mu (alpha(a) = alpha a^mu).");
  pgd_table().bind(pgd);

  nb::class_<lensing::SourceDistribution>(m, "SourceDistribution",
                                          "The redshift distribution of lensing sources.")
      .def_static("fixed", &lensing::SourceDistribution::fixed, nb::arg("z"),
                  "All sources at redshift z.")
      .def_static("smail", &lensing::SourceDistribution::smail, nb::arg("alpha"), nb::arg("beta"),
                  nb::arg("z0"), "Smail et al. (1994): n(z) ~ z^alpha exp(-(z/z0)^beta).")
      .def_static("gaussian", &lensing::SourceDistribution::gaussian, nb::arg("mean"),
                  nb::arg("sigma"), "A Gaussian in z, truncated at z = 0.")
      .def_static(
          "histogram",
          [](std::vector<double> z, std::vector<double> n) {
            return lensing::SourceDistribution::histogram(std::move(z), std::move(n));
          },
          nb::arg("z"), nb::arg("n"),
          "n tabulated at increasing redshifts z, linearly interpolated, normalised here.")
      .def_prop_ro("description", &lensing::SourceDistribution::description)
      .def("__repr__", [](const lensing::SourceDistribution& s) {
        return "SourceDistribution(" + s.description() + ")";
      });

  m.def("set_num_threads", &set_threads, nb::arg("n"),
        "Sets the number of OpenMP threads (and FFTW threads of new plans) for diffpm's runs.");
  m.def("get_num_threads", &max_threads, "The number of OpenMP threads diffpm's runs use.");

  m.def(
      "white_noise",
      [](const SimulationConfig& cfg, std::uint64_t seed, const std::string& precision) {
        const mesh::Grid lattice(cfg.particles, cfg.box);
        lattice.validate();
        if (is_double(precision))
          return nb::cast(field_to<double>(ic::white_noise<double>(lattice, seed)));
        return nb::cast(field_to<float>(ic::white_noise<float>(lattice, seed)));
      },
      nb::arg("config"), nb::arg("seed"), nb::arg("precision") = "float",
      "The unit white noise of `seed` on the particle lattice (Philox4x32-10, the same bits on "
      "every thread count; the noise of run_simulation and of diffpm-sim --seed).");

  m.def(
      "simulate",
      [](nb::handle params, const SimulationConfig& cfg, nb::object noise,
         const std::string& precision, std::optional<nbody::PgdParameters> pgd) {
        const auto p = to_parameters(params);
        if (is_double(precision)) return simulate_t<double>(p, cfg, noise, pgd);
        return simulate_t<float>(p, cfg, noise, pgd);
      },
      nb::arg("parameters"), nb::arg("config"), nb::arg("white_noise") = nb::none(),
      nb::arg("precision") = "float", nb::arg("pgd") = nb::none(),
      "A PM run (2LPT/1LPT at a_start, FastPM steps to a_end) from the white noise (default: "
      "that of config.seed). Returns a dict: positions (N, 3) in [0, L) Mpc/h, momenta (N, 3), "
      "delta_linear (the linear field at a = 1, half spectrum). With pgd, the positions are "
      "PGD-corrected at a_end.");

  m.def(
      "paint_density",
      [](nb::handle positions, nb::handle box_arg, nb::handle mesh) {
        const auto n = cast_triple<int>(mesh, "mesh");
        const auto box = cast_triple<double>(box_arg, "box");
        if (is_float64(positions))
          return nb::cast(paint_t<double>(as_array<double>(positions), box, n));
        return nb::cast(paint_t<float>(as_array<float>(positions), box, n));
      },
      nb::arg("positions"), nb::arg("box"), nb::arg("mesh"),
      "The CIC overdensity delta = N_cells/N_p * counts - 1 of particles at positions (N, 3) "
      "(Mpc/h, periodic box), in their precision (float64 stays double, else float).");

  m.def(
      "power_spectrum",
      [](nb::handle delta, nb::handle box_arg, bool deconvolve_cic, std::optional<double> k_min,
         std::optional<double> k_max, std::optional<double> bin_width, std::optional<int> n_bins,
         bool logarithmic, std::optional<double> shot_noise_particles) {
        const auto box = cast_triple<double>(box_arg, "box");
        if (is_float64(delta)) {
          return power_t<double>(as_array<double>(delta), box, deconvolve_cic, k_min, k_max,
                                 bin_width, n_bins, logarithmic, shot_noise_particles);
        }
        return power_t<float>(as_array<float>(delta), box, deconvolve_cic, k_min, k_max, bin_width,
                              n_bins, logarithmic, shot_noise_particles);
      },
      nb::arg("delta"), nb::arg("box"), nb::arg("deconvolve_cic") = false,
      nb::arg("k_min") = nb::none(), nb::arg("k_max") = nb::none(),
      nb::arg("bin_width") = nb::none(), nb::arg("n_bins") = nb::none(),
      nb::arg("logarithmic") = false, nb::arg("shot_noise_particles") = nb::none(),
      "The binned power spectrum of an overdensity on a periodic box (Mpc/h): dict of k_edges, "
      "k (mode-weighted mean), power ((Mpc/h)^3) and n_modes. Default bins: width k_f from "
      "k_f/2 to the Nyquist frequency.");

  m.def(
      "lensing_maps",
      [](nb::handle params, const SimulationConfig& cfg, const lensing::LensingConfig& lens,
         nb::handle sources, nb::object noise, const std::string& precision) {
        const auto p = to_parameters(params);
        if (is_double(precision)) return lensing_t<double>(p, cfg, lens, sources, noise);
        return lensing_t<float>(p, cfg, lens, sources, noise);
      },
      nb::arg("parameters"), nb::arg("config"), nb::arg("lensing"), nb::arg("sources"),
      nb::arg("white_noise") = nb::none(), nb::arg("precision") = "float",
      "A PM run with a lightcone and the Born convergence of each source (a redshift or a "
      "SourceDistribution). Returns the dict of simulate() with kappa (S, pixels, pixels; "
      "row iy, column ix), plane_chi (Mpc/h) and plane_a.");
}

}  // namespace diffpm::python
