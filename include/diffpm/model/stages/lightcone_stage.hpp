/// \file
/// \brief The lightcone of a recorded run (planes painted as the run passes them, Born maps) and
/// the stages of its reverse pass: the planes painted from LPT, and the pullback of the
/// lightcone's own scalars.
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <utility>
#include <vector>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/lensing/lightcone.hpp"
#include "diffpm/lensing/lightcone_coefficients.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/model/stages/cosmologies.hpp"
#include "diffpm/model/stages/lpt_stage.hpp"
#include "diffpm/nbody/pgd.hpp"

namespace diffpm::model {

/// The lightcone of one run with its coefficients as duals (the planes' chi_i and a_i, the
/// shells' width, the Born weights; empty without duals). Shared by the run that paints it and
/// the stages whose vjp paints its adjoint. With a PGD correction (nbody/pgd.hpp), every plane
/// is painted from the corrected positions x + S(x) at the plane's a_i.
template <class T>
struct LightconeRecord {
  std::unique_ptr<lensing::Lightcone<T>> cone;
  lensing::Shells<double> shells;
  lensing::Shells<cosmology::ParameterDual> shells_dual;
  std::vector<std::vector<cosmology::ParameterDual>> weights_dual;  ///< [source][plane]
  std::vector<double> plane_a;                   ///< the planes' scale factors, sorted
  std::shared_ptr<nbody::PgdCorrection<T>> pgd;  ///< null: no correction
  /// The correction on the device backend, for planes painted there (backend cuda; see
  /// model/stages/integration_stage_device.hpp).
  std::shared_ptr<nbody::PgdCorrection<T, Cuda>> device_pgd;
  nbody::PgdParameters pgd_parameters;

  /// The lightcone of `sources` with `planes` shells, its coefficients from the one templated
  /// lensing::lightcone_coefficients in double and, with duals, as duals.
  LightconeRecord(const Cosmologies& c, const std::vector<lensing::SourceDistribution>& sources,
                  int planes, lensing::Replicas replicas, std::vector<lensing::PlaneGrid> grids,
                  const lensing::MapGeometry& map) {
    auto values = lensing::lightcone_coefficients(*c.values, sources, planes);
    if (c.duals) {
      auto duals = lensing::lightcone_coefficients(*c.duals, sources, planes);
      shells_dual = std::move(duals.shells);
      weights_dual = std::move(duals.born_weights);
    }
    shells = std::move(values.shells);
    cone = std::make_unique<lensing::Lightcone<T>>(shells, std::move(replicas), std::move(grids),
                                                   map, std::move(values.born_weights));
    plane_a = cone->scale_factors();
  }

  /// Whether a is a plane's scale factor.
  bool is_plane(double a) const { return std::binary_search(plane_a.begin(), plane_a.end(), a); }

  /// Paints the planes at a from x, corrected by PGD if there is one.
  void paint(double a, const particles::Positions<T>& x) const {
    if (!pgd) {
      cone->paint(a, x);
      return;
    }
    particles::Positions<T> y;
    pgd->apply(x, pgd_parameters, a, y);
    cone->paint(a, y);
  }

  /// The adjoint of paint(a, x): adds dL/dx to x_bar, the lightcone's scalars to
  /// adjoints.lightcone and, with PGD, dL/d(its parameters) to adjoints.pgd and, through the
  /// amplitude alpha a_i^mu of a plane that moves with theta, dL/da_i to the parameters.
  void paint_adjoint(double a, const particles::Positions<T>& x, particles::Positions<T>& x_bar,
                     Adjoints<T>& adjoints) const {
    if (!pgd) {
      cone->paint_adjoint(a, x, *adjoints.kappa_bar, x_bar, adjoints.lightcone);
      return;
    }
    particles::Positions<T> y, y_bar(x.size(), {T(0), T(0), T(0)});
    pgd->apply(x, pgd_parameters, a, y);
    cone->paint_adjoint(a, y, *adjoints.kappa_bar, y_bar, adjoints.lightcone);
    add_pgd_gradient(a, pgd->apply_adjoint(x, pgd_parameters, a, y_bar, x_bar), adjoints);
  }

  /// Adds a plane's PGD gradient g (at the plane's a) to adjoints.pgd and, through the
  /// amplitude alpha(a_i) = alpha a_i^mu, dL/da_i = dL/dalpha(a_i) alpha mu a_i^(mu - 1) to the
  /// parameters (g.alpha is dL/dalpha(a_i) a_i^mu).
  void add_pgd_gradient(double a, const nbody::PgdGradient& g, Adjoints<T>& adjoints) const {
    adjoints.pgd += g;
    const double dL_da = g.alpha * pgd_parameters.alpha * pgd_parameters.mu / a;
    if (!shells_dual.a.empty() && dL_da != 0.0)
      adjoints.parameters.add(plane_scale_factor(a), dL_da, "PGD amplitude at a plane");
  }

  /// The dual a_i of the plane painted at a (a is one of shells.a, exactly).
  const cosmology::ParameterDual& plane_scale_factor(double a) const {
    for (std::size_t i = 0; i < shells.a.size(); ++i)
      if (shells.a[i] == a) return shells_dual.a.at(i);
    throw InvalidArgument("model: a = " + format_number(a) + " is not a plane's scale factor");
  }
};

/// The pullback of the lightcone's own scalars, recorded before every stage that paints a plane
/// so that its vjp runs after all of theirs: each plane's chi_i (its a_i goes with the drift to
/// the plane, or the LPT factors), the shells' width and the Born weights.
template <class T>
class LightconeStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  explicit LightconeStage(std::shared_ptr<const LightconeRecord<T>> record)
      : record_(std::move(record)) {}

  const char* name() const override { return "lightcone coefficients"; }

  void vjp(Adjoints<T>& adjoints) override {
    const auto& g = adjoints.lightcone;
    const LightconeRecord<T>& r = *record_;
    const std::size_t planes = r.shells_dual.chi.size();
    if (g.chi.size() != planes) return;  // no plane saw an adjoint, or no duals
    for (std::size_t i = 0; i < planes; ++i) {
      adjoints.parameters.add(r.shells_dual.chi[i], g.chi[i], "plane distance chi_i");
      for (std::size_t s = 0; s < r.weights_dual.size(); ++s)
        adjoints.parameters.add(r.weights_dual[s][i], g.weights[s][i], "Born weight");
    }
    adjoints.parameters.add(r.shells_dual.width, g.width, "shell width");
  }

 private:
  std::shared_ptr<const LightconeRecord<T>> record_;
};

/// A plane painted from the LPT particles at its a_i (before the integration starts), and its
/// vjp: dL/d(LPT fields) through the plane's paint adjoint, and the LPT factors at the dual a_i.
template <class T>
class LptPlaneStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  LptPlaneStage(std::shared_ptr<LptFields<T>> fields,
                std::shared_ptr<const LightconeRecord<T>> lightcone, double a,
                std::array<double, 3> offset, Cosmologies cosmologies)
      : fields_(std::move(fields)),
        cone_(std::move(lightcone)),
        a_(a),
        offset_(offset),
        cosmo_(std::move(cosmologies)) {}

  const char* name() const override { return "lightcone plane from LPT"; }

  void vjp(Adjoints<T>& adjoints) override {
    if (!adjoints.maps()) return;
    particles::Lpt<T>& lpt = fields_->adjoint();
    const auto f = LptStage<T>::factors(*cosmo_.values, a_, fields_->order());
    particles::Positions<T> x, p;
    lpt.particles(f, x, p, offset_);
    particles::Positions<T> x_bar(x.size(), {T(0), T(0), T(0)}), zero(x.size(), {T(0), T(0), T(0)});
    cone_->paint_adjoint(a_, x, x_bar, adjoints);
    const auto bar = lpt.adjoint_accumulate(x_bar, zero, f);
    if (cosmo_.duals) {
      LptStage<T>::pull_back(*cosmo_.duals, cone_->plane_scale_factor(a_), bar, fields_->order(),
                             adjoints.parameters);
    }
  }

 private:
  std::shared_ptr<LptFields<T>> fields_;
  std::shared_ptr<const LightconeRecord<T>> cone_;
  double a_;
  std::array<double, 3> offset_;
  Cosmologies cosmo_;
};

}  // namespace diffpm::model
