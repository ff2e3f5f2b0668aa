// The option tables of diffpm.SimulationConfig, LensingConfig and PgdParameters (one definition
// per option: keyword constructor, attribute, validation of its type, "did you mean"), and
// lensing sources from Python values.
#pragma once

#include <nanobind/stl/array.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/simulation.hpp"

namespace diffpm::python {

/// A field of Config read and written as type V.
template <class Config, class V>
void add_field(OptionTable<Config>& t, const std::string& name, V Config::*field,
               const char* expected) {
  t.add(
      name, [field](const Config& c) { return nb::cast(c.*field); },
      [field, name, expected](Config& c, nb::handle v) {
        c.*field = cast_option<V>(v, name, expected);
      });
}

template <class Config, class E>
void add_choice(OptionTable<Config>& t, const std::string& name, E Config::*field,
                std::vector<std::pair<std::string, E>> choices) {
  t.add(
      name, [field, choices](const Config& c) { return nb::cast(choice_name(c.*field, choices)); },
      [field, name, choices](Config& c, nb::handle v) {
        c.*field = cast_choice(v, name, choices);
      });
}

inline const OptionTable<nbody::SimulationConfig>& simulation_table() {
  using C = nbody::SimulationConfig;
  static const OptionTable<C> table = [] {
    OptionTable<C> t("SimulationConfig");
    t.add(
        "box", [](const C& c) { return nb::cast(c.box); },
        [](C& c, nb::handle v) { c.box = cast_triple<double>(v, "box"); });
    t.add(
        "particles", [](const C& c) { return nb::cast(c.particles); },
        [](C& c, nb::handle v) { c.particles = cast_triple<int>(v, "particles"); });
    t.add(
        "mesh", [](const C& c) { return nb::cast(c.mesh); },
        [](C& c, nb::handle v) { c.mesh = cast_triple<int>(v, "mesh"); });
    add_field(t, "a_start", &C::a_start, "a number");
    add_field(t, "a_end", &C::a_end, "a number");
    add_field(t, "steps", &C::steps, "an integer");
    add_field(t, "lpt_order", &C::lpt_order, "1 or 2");
    add_field(t, "seed", &C::seed, "a non-negative integer");
    add_field(t, "fixed_amplitude", &C::fixed_amplitude, "a bool");
    add_field(t, "threads", &C::threads, "an integer (0: the OpenMP thread count)");
    add_choice(
        t, "spacing", &C::spacing,
        {{"linear", nbody::StepSpacing::linear}, {"logarithmic", nbody::StepSpacing::logarithmic}});
    add_choice(t, "stepper", &C::stepper,
               {{"fastpm", nbody::Stepper::fastpm}, {"leapfrog", nbody::Stepper::leapfrog}});
    add_choice(t, "backend", &C::backend, {{"cpu", BackendKind::cpu}, {"cuda", BackendKind::cuda}});
    t.add(
        "laplacian",
        [](const C& c) {
          return nb::cast(c.kernel.laplacian == mesh::LaplacianKernel::exact ? "exact"
                                                                             : "finite_difference");
        },
        [](C& c, nb::handle v) {
          c.kernel.laplacian =
              cast_choice(v, "laplacian",
                          std::vector<std::pair<std::string, mesh::LaplacianKernel>>{
                              {"exact", mesh::LaplacianKernel::exact},
                              {"finite_difference", mesh::LaplacianKernel::finite_difference}});
        });
    const std::vector<std::pair<std::string, mesh::GradientKernel>> gradients = {
        {"exact", mesh::GradientKernel::exact},
        {"finite_difference_2", mesh::GradientKernel::finite_difference_2},
        {"finite_difference_4", mesh::GradientKernel::finite_difference_4}};
    t.add(
        "gradient",
        [gradients](const C& c) { return nb::cast(choice_name(c.kernel.gradient, gradients)); },
        [gradients](C& c, nb::handle v) {
          c.kernel.gradient = cast_choice(v, "gradient", gradients);
        });
    t.add(
        "smoothing_scale", [](const C& c) { return nb::cast(c.kernel.smoothing_scale); },
        [](C& c, nb::handle v) {
          c.kernel.smoothing_scale = cast_option<double>(v, "smoothing_scale", "a number");
        });
    return t;
  }();
  return table;
}

inline const OptionTable<lensing::LensingConfig>& lensing_table() {
  using C = lensing::LensingConfig;
  static const OptionTable<C> table = [] {
    OptionTable<C> t("LensingConfig");
    t.add(
        "pixels", [](const C& c) { return nb::cast(c.map.pixels); },
        [](C& c, nb::handle v) { c.map.pixels = cast_option<int>(v, "pixels", "an integer"); });
    t.add(
        "fov_deg", [](const C& c) { return nb::cast(c.map.fov_deg); },
        [](C& c, nb::handle v) { c.map.fov_deg = cast_option<double>(v, "fov_deg", "a number"); });
    add_field(t, "planes", &C::planes, "an integer");
    add_field(t, "plane_cell", &C::plane_cell, "a number (Mpc/h; 0: the force mesh's cell)");
    add_field(t, "random_shifts", &C::random_shifts, "a bool");
    add_field(t, "random_orientations", &C::random_orientations, "a bool");
    add_field(t, "shift_seed", &C::shift_seed, "a non-negative integer");
    return t;
  }();
  return table;
}

inline const OptionTable<nbody::PgdParameters>& pgd_table() {
  using C = nbody::PgdParameters;
  static const OptionTable<C> table = [] {
    OptionTable<C> t("PgdParameters");
    add_field(t, "alpha", &C::alpha, "a number");
    add_field(t, "k_l", &C::k_l, "a number (h/Mpc)");
    add_field(t, "k_s", &C::k_s, "a number (h/Mpc)");
    add_field(t, "mu", &C::mu, "a number");
    return t;
  }();
  return table;
}

/// Sources from a sequence whose items are redshifts (numbers) or SourceDistributions.
inline std::vector<lensing::SourceDistribution> to_sources(nb::handle sources) {
  std::vector<lensing::SourceDistribution> out;
  if (nb::isinstance<lensing::SourceDistribution>(sources) || nb::isinstance<nb::float_>(sources) ||
      nb::isinstance<nb::int_>(sources)) {
    throw InvalidArgument(
        "sources: expected a list of source redshifts or SourceDistributions (one per map)");
  }
  for (nb::handle s : sources) {
    if (nb::isinstance<lensing::SourceDistribution>(s))
      out.push_back(nb::cast<lensing::SourceDistribution>(s));
    else
      out.push_back(lensing::SourceDistribution::fixed(
          cast_option<double>(s, "source redshift", "a number or a SourceDistribution")));
  }
  if (out.empty()) throw InvalidArgument("sources: empty (give one redshift or n(z) per map)");
  return out;
}

}  // namespace diffpm::python
