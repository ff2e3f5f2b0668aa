// diffpm.Parameters and diffpm.Cosmology: the background, growth and linear power of
// cosmology/, values and exact derivatives with respect to the eight parameters.
#include "diffpm/cosmology/cosmology.hpp"

#include <nanobind/stl/array.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <deque>
#include <memory>
#include <string>

#include "common.hpp"
#include "parameters.hpp"

namespace diffpm::python {

namespace dc = diffpm::cosmology;

namespace {

const std::vector<std::pair<std::string, dc::Transfer>>& transfers() {
  static const std::vector<std::pair<std::string, dc::Transfer>> t = {
      {"eisenstein_hu", dc::Transfer::eisenstein_hu},
      {"eisenstein_hu_nowiggle", dc::Transfer::eisenstein_hu_nowiggle},
      {"bbks", dc::Transfer::bbks}};
  return t;
}

/// A cosmology and, built on first use, the same with dual numbers for the derivatives.
class PyCosmology {
 public:
  PyCosmology(const dc::Parameters<double>& p, const std::string& transfer) {
    dc::validate(p);
    options_.transfer = cast_choice(nb::str(transfer.c_str()), "transfer", transfers());
    values_ = std::make_unique<dc::Cosmology<double>>(p, options_);
  }
  const dc::Parameters<double>& parameters() const { return values_->parameters(); }
  std::string transfer() const { return choice_name(options_.transfer, transfers()); }

  /// f(x) element-wise over `x` (any shape), and with `derivatives`, also df/dtheta with a
  /// trailing axis of the eight parameters.
  template <class F>
  nb::object map(nb::handle arg, bool derivatives, F f) {
    const bool scalar = nb::cast<int>(nb::module_::import_("numpy").attr("ndim")(arg)) == 0;
    const In<double> x = as_array<double>(arg);
    std::vector<std::size_t> shape;
    if (!scalar)
      for (std::size_t d = 0; d < x.ndim(); ++d) shape.push_back(x.shape(d));
    const std::size_t n = x.size();
    const double* in = x.data();
    std::vector<double> value(n);
    if (!derivatives) {
      for (std::size_t i = 0; i < n; ++i) value[i] = f(*values_, in[i]);
      if (scalar) return nb::float_(value[0]);
      return nb::cast(to_numpy<double>(std::move(value), shape));
    }
    if (!duals_) {
      duals_ = std::make_unique<dc::Cosmology<dc::ParameterDual>>(dc::seed_parameters(parameters()),
                                                                  options_);
    }
    std::vector<double> jac(n * dc::n_parameters);
    for (std::size_t i = 0; i < n; ++i) {
      const dc::ParameterDual v = f(*duals_, dc::ParameterDual(in[i]));
      value[i] = v.value();
      for (int q = 0; q < dc::n_parameters; ++q) jac[i * dc::n_parameters + q] = derivative(v, q);
    }
    auto jshape = shape;
    jshape.push_back(dc::n_parameters);
    if (scalar) return nb::make_tuple(value[0], to_numpy<double>(std::move(jac), jshape));
    return nb::make_tuple(to_numpy<double>(std::move(value), shape),
                          to_numpy<double>(std::move(jac), jshape));
  }

 private:
  dc::CosmologyOptions options_;
  std::unique_ptr<dc::Cosmology<double>> values_;
  std::unique_ptr<dc::Cosmology<dc::ParameterDual>> duals_;
};

const char* kMapDoc =
    "Element-wise over an array (any shape) of its argument. With derivatives=True, returns "
    "(value, jacobian), the jacobian with a trailing axis of the eight parameters in the order "
    "of diffpm.PARAMETERS (exact, by forward-mode dual numbers).";

}  // namespace

void bind_cosmology(nb::module_& m) {
  m.attr("PARAMETERS") =
      nb::make_tuple(dc::parameter_names[0], dc::parameter_names[1], dc::parameter_names[2],
                     dc::parameter_names[3], dc::parameter_names[4], dc::parameter_names[5],
                     dc::parameter_names[6], dc::parameter_names[7]);

  auto params = nb::class_<dc::Parameters<double>>(
      m, "Parameters",
      "A w0wa-CDM cosmology (Planck 2018 defaults): Omega_c, Omega_b, h, n_s, sigma8, "
      "Omega_k, w0, wa, and T_CMB (K), N_eff, radiation.");
  parameter_table().bind(params);
  params.def(
      "validate", [](const dc::Parameters<double>& p) { dc::validate(p); },
      "Raises ValueError naming the parameter and value if the cosmology is invalid.");
  params.def(
      "to_array",
      [](const dc::Parameters<double>& p) {
        std::vector<double> v(dc::n_parameters);
        for (int i = 0; i < dc::n_parameters; ++i) v[i] = p[static_cast<dc::Parameter>(i)];
        return to_numpy<double>(std::move(v), {std::size_t(dc::n_parameters)});
      },
      "The eight parameters in the order of diffpm.PARAMETERS.");

  nb::class_<PyCosmology> cls(m, "Cosmology",
                              "Background, growth and sigma8-normalised linear power of one set "
                              "of parameters (lengths in Mpc/h, wavenumbers in h/Mpc).");
  cls.def(nb::init<const dc::Parameters<double>&, const std::string&>(), nb::arg("parameters"),
          nb::arg("transfer") = "eisenstein_hu")
      .def_prop_ro("parameters", &PyCosmology::parameters)
      .def_prop_ro("transfer", &PyCosmology::transfer);
  // One element-wise function of the background or growth: f(cosmology, x), values or duals.
  auto def_map = [&cls](const char* name, const char* arg, const char* what, auto f) {
    static std::deque<std::string> docs;  // nanobind keeps the pointer: the text must outlive it
    docs.push_back(std::string(what) + " " + kMapDoc);
    cls.def(
        name, [f](PyCosmology& c, nb::handle x, bool d) { return c.map(x, d, f); }, nb::arg(arg),
        nb::arg("derivatives") = false, docs.back().c_str());
  };
  def_map("E", "a", "H(a)/H0.", [](const auto& c, const auto& x) { return c.E(x); });
  def_map("comoving_distance", "a", "chi(a) in Mpc/h.",
          [](const auto& c, const auto& x) { return c.comoving_distance(x); });
  def_map("scale_factor_at_distance", "chi", "a(chi), chi in Mpc/h.",
          [](const auto& c, const auto& x) { return c.scale_factor_at_distance(x); });
  def_map("growth_factor", "a", "D1(a), normalised to D1(1) = 1.",
          [](const auto& c, const auto& x) { return c.growth_factor(x); });
  def_map("growth_rate", "a", "f1(a) = dln D1/dln a.",
          [](const auto& c, const auto& x) { return c.growth_rate(x); });
  def_map("growth_factor_2", "a", "D2(a), the second-order growth factor.",
          [](const auto& c, const auto& x) { return c.growth_factor_2(x); });
  static const std::string power_doc =
      std::string("P_lin(k, a) in (Mpc/h)^3, k in h/Mpc. ") + kMapDoc;
  cls.def(
      "linear_power",
      [](PyCosmology& c, nb::handle k, double a, bool d) {
        return c.map(k, d, [a](const auto& cc, const auto& kk) {
          using S = std::decay_t<decltype(kk)>;
          return cc.linear_power(value_of(kk), S(a));
        });
      },
      nb::arg("k"), nb::arg("a") = 1.0, nb::arg("derivatives") = false, power_doc.c_str());
}

}  // namespace diffpm::python
