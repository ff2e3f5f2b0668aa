// The option table of diffpm.Parameters, and cosmological parameters from whatever a Python
// caller hands over: a diffpm.Parameters, a dict of names, or the eight values in order.
#pragma once

#include <nanobind/stl/string.h>

#include "common.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::python {

inline const OptionTable<cosmology::Parameters<double>>& parameter_table() {
  using P = cosmology::Parameters<double>;
  static const OptionTable<P> table = [] {
    OptionTable<P> t("Parameters");
    for (int i = 0; i < cosmology::n_parameters; ++i) {
      const auto q = static_cast<cosmology::Parameter>(i);
      const std::string name = cosmology::parameter_names[i];
      t.add(
          name, [q](const P& p) { return nb::cast(p[q]); },
          [q, name](P& p, nb::handle v) { p[q] = cast_option<double>(v, name, "a number"); });
    }
    t.add(
        "T_CMB", [](const P& p) { return nb::cast(p.T_CMB); },
        [](P& p, nb::handle v) { p.T_CMB = cast_option<double>(v, "T_CMB", "a number"); });
    t.add(
        "N_eff", [](const P& p) { return nb::cast(p.N_eff); },
        [](P& p, nb::handle v) { p.N_eff = cast_option<double>(v, "N_eff", "a number"); });
    t.add(
        "radiation", [](const P& p) { return nb::cast(p.radiation); },
        [](P& p, nb::handle v) { p.radiation = cast_option<bool>(v, "radiation", "a bool"); });
    return t;
  }();
  return table;
}

/// Parameters from a diffpm.Parameters, a dict {name: value} (the others Planck 2018's, or
/// `base`'s), or a sequence of the eight values in the order of diffpm.PARAMETERS (T_CMB,
/// N_eff and radiation from `base`). Not validated here.
inline cosmology::Parameters<double> to_parameters(nb::handle h,
                                                   const cosmology::Parameters<double>& base = {}) {
  using P = cosmology::Parameters<double>;
  if (nb::isinstance<P>(h)) return nb::cast<P>(h);
  P p = base;
  if (nb::isinstance<nb::dict>(h)) {
    for (auto [key, value] : nb::borrow<nb::dict>(h))
      parameter_table().set(p, nb::cast<std::string>(key), value);
    return p;
  }
  std::vector<double> v;
  try {
    v = nb::cast<std::vector<double>>(nb::module_::import_("numpy")
                                          .attr("asarray")(h, nb::arg("dtype") = "float64")
                                          .attr("ravel")()
                                          .attr("tolist")());
  } catch (const std::exception&) {
    throw InvalidArgument(
        "parameters: expected a diffpm.Parameters, a dict of names, or the eight values in the "
        "order of diffpm.PARAMETERS");
  }
  if (v.size() != std::size_t(cosmology::n_parameters)) {
    throw InvalidArgument("parameters: " + std::to_string(v.size()) +
                          " values given, expected 8 in the order of diffpm.PARAMETERS");
  }
  for (int i = 0; i < cosmology::n_parameters; ++i) p[static_cast<cosmology::Parameter>(i)] = v[i];
  return p;
}

}  // namespace diffpm::python
