/// \file
/// \brief The lightcone of a simulation: shells painted into density planes as the run passes
/// their scale factors, and the Born convergence maps built from them.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/lensing/born.hpp"
#include "diffpm/lensing/flat_map.hpp"
#include "diffpm/lensing/plane.hpp"
#include "diffpm/lensing/plane_interpolation.hpp"
#include "diffpm/lensing/replicas.hpp"
#include "diffpm/lensing/shell_painting.hpp"
#include "diffpm/lensing/shells.hpp"

namespace diffpm::lensing {

/// dL/d(the lightcone's scalars), summed by Lightcone::paint_adjoint over the planes it sees.
struct LightconeGradient {
  std::vector<double> chi;                   ///< dL/dchi_i, by plane
  double width = 0.0;                        ///< dL/dDelta (the shells' common width)
  std::vector<std::vector<double>> weights;  ///< dL/dc_{s,i}, the Born weights, [source][plane]
};

/// Collects the lightcone during a run. The simulation calls paint(a_i, x) with positions
/// drifted exactly to each plane's a_i (the integrator's snapshot hook: no step boundary is
/// added, and a_i moving with the cosmology moves the paint time continuously); each call
/// paints that shell's plane (shell_painting.hpp), samples it at the map pixels
/// (plane_interpolation.hpp) and adds it to every source's convergence with its Born weight
/// (born.hpp). Planes are dropped after use unless keep_planes is set (the adjoint needs them).
template <class T>
class Lightcone {
 public:
  /// born_weights[s][i]: the weight of plane i in source s's convergence (born_weights()).
  /// plane_grids[i]: the angular grid of plane i (PlaneGrid::covering(map, cell, chi_i)), fixed
  /// for the lightcone's life (a discretisation, not a function of the cosmology), so that
  /// gradients and finite differences see the same planes.
  Lightcone(Shells<double> shells, Replicas replicas, std::vector<PlaneGrid> plane_grids,
            const MapGeometry& map, std::vector<std::vector<double>> born_weights,
            double particle_density = 0.0, bool keep_planes = false)
      : shells_(std::move(shells)),
        replicas_(std::move(replicas)),
        grids_(std::move(plane_grids)),
        map_(map),
        weights_(std::move(born_weights)),
        density_(particle_density),
        keep_(keep_planes),
        done_(shells_.chi.size(), false) {
    replicas_.validate();
    map_.validate();
    if (shells_.chi.empty()) throw InvalidArgument("Lightcone: no shells");
    if (grids_.size() != shells_.chi.size()) {
      throw InvalidArgument("Lightcone: " + std::to_string(grids_.size()) + " plane grids for " +
                            std::to_string(shells_.chi.size()) + " planes");
    }
    for (const auto& g : grids_) detail::check_plane_covers(g, map_, "Lightcone");
    if (weights_.empty()) throw InvalidArgument("Lightcone: no sources");
    for (std::size_t s = 0; s < weights_.size(); ++s) {
      if (weights_[s].size() != shells_.chi.size()) {
        throw InvalidArgument("Lightcone: source " + std::to_string(s) + " has " +
                              std::to_string(weights_[s].size()) + " Born weights for " +
                              std::to_string(shells_.chi.size()) + " planes");
      }
    }
    kappa_.assign(weights_.size(), Map<T>(map_));
    if (keep_) planes_.assign(shells_.chi.size(), Plane<T>());
  }

  /// The scale factors at which paint() must be called, increasing (farthest plane first).
  std::vector<double> scale_factors() const {
    std::vector<double> a(shells_.a.begin(), shells_.a.end());
    std::sort(a.begin(), a.end());
    return a;
  }

  /// Paints every plane whose a_i equals a (the snapshot hook passes back the requested values
  /// exactly). Throws InvalidArgument if a is no plane's scale factor or was already painted.
  void paint(double a, const particles::Positions<T>& x) {
    for (const std::size_t i : planes_at(a, "Lightcone")) {
      check_not_painted(i);
      Plane<T> plane(grids_[i]);
      paint_shell(x, replicas_, shells_.chi[i], shells_.width, plane, density_);
      add_plane(i, std::move(plane));
    }
  }

  /// The adjoint of paint(a, x): for every plane at a, given kappa_bar[s] = dL/dkappa_s, adds
  /// dL/dx to x_bar (sized to the particles, zeros, if empty) and dL/dchi_i, dL/dDelta and
  /// dL/dc_{s,i} to `g` (sized on first use). The plane is painted again from x (a few
  /// nanoseconds per particle image) for dL/dc = <kappa_bar, plane at the pixels>, so nothing
  /// is kept between the passes. Chain: Born sum (born_accumulate_adjoint), sampling
  /// (interpolate_plane_adjoint), shell painting (paint_shell_adjoint).
  void paint_adjoint(double a, const particles::Positions<T>& x,
                     const std::vector<Map<T>>& kappa_bar, particles::Positions<T>& x_bar,
                     LightconeGradient& g) const {
    for (const std::size_t i : planes_at(a, "Lightcone::paint_adjoint")) {
      Plane<T> plane(grids_[i]);
      paint_shell(x, replicas_, shells_.chi[i], shells_.width, plane, density_);
      const Plane<T> plane_bar = add_plane_adjoint(i, plane, kappa_bar, g);
      const ShellPaintGradient sg = paint_shell_adjoint(x, replicas_, shells_.chi[i], shells_.width,
                                                        plane_bar, x_bar, density_);
      g.chi[i] += sg.chi;
      g.width += sg.width;
    }
  }

  /// The shells whose a_i equals a (the planes paint() paints at a). Throws InvalidArgument
  /// naming `fn` if there is none.
  std::vector<std::size_t> planes_at(double a, const char* fn) const {
    std::vector<std::size_t> found;
    for (std::size_t i = 0; i < shells_.a.size(); ++i)
      if (shells_.a[i] == a) found.push_back(i);
    if (found.empty()) {
      throw InvalidArgument(std::string(fn) + ": a = " + format_number(a) +
                            " is not a plane's scale factor");
    }
    return found;
  }

  /// Throws InvalidArgument if plane i has been painted.
  void check_not_painted(std::size_t i) const {
    if (done_.at(i)) {
      throw InvalidArgument("Lightcone: plane " + std::to_string(i) +
                            " at a = " + format_number(shells_.a[i]) + " painted twice");
    }
  }

  /// The second half of paint() for plane i, whatever backend painted it (shell_painting.hpp
  /// or its device counterpart): samples the plane at the map pixels, adds it to every
  /// source's convergence with its Born weight, keeps it if keep_planes.
  void add_plane(std::size_t i, Plane<T> plane) {
    check_not_painted(i);
    if (plane.grid != grids_[i]) throw InvalidArgument("Lightcone: a plane on another grid");
    Map<T> sampled(map_);
    interpolate_plane(plane, sampled);
    for (std::size_t s = 0; s < weights_.size(); ++s) {
      born_accumulate(sampled, weights_[s][i], kappa_[s]);
    }
    if (keep_) planes_[i] = std::move(plane);
    done_[i] = true;
  }

  /// The adjoint of add_plane for plane i painted as `plane`: adds dL/dc_{s,i} to `g` (sized on
  /// first use) and returns dL/d(plane), for the shell painting's adjoint.
  Plane<T> add_plane_adjoint(std::size_t i, const Plane<T>& plane,
                             const std::vector<Map<T>>& kappa_bar, LightconeGradient& g) const {
    if (kappa_bar.size() != weights_.size()) {
      throw InvalidArgument("Lightcone::paint_adjoint: " + std::to_string(kappa_bar.size()) +
                            " map adjoints for " + std::to_string(weights_.size()) + " sources");
    }
    const std::size_t planes = shells_.chi.size();
    if (g.chi.empty()) g.chi.assign(planes, 0.0);
    if (g.weights.empty()) g.weights.assign(weights_.size(), std::vector<double>(planes, 0.0));
    if (g.chi.size() != planes || g.weights.size() != weights_.size()) {
      throw InvalidArgument(
          "Lightcone::paint_adjoint: the gradient was sized for another "
          "lightcone");
    }
    Map<T> sampled(map_);
    interpolate_plane(plane, sampled);
    Map<T> sampled_bar(map_);
    for (std::size_t s = 0; s < weights_.size(); ++s) {
      g.weights[s][i] +=
          born_accumulate_adjoint(sampled, weights_[s][i], kappa_bar[s], sampled_bar);
    }
    Plane<T> plane_bar(grids_[i]);
    interpolate_plane_adjoint(sampled_bar, plane_bar);
    return plane_bar;
  }

  /// Whether every plane has been painted.
  bool complete() const {
    return std::all_of(done_.begin(), done_.end(), [](bool d) { return d; });
  }

  /// One convergence map per source, in the order of the Born weights. Throws InvalidArgument
  /// while planes are missing (a map with missing planes would be silently wrong).
  const std::vector<Map<T>>& convergence() const {
    if (!complete()) {
      const auto missing = std::count(done_.begin(), done_.end(), false);
      throw InvalidArgument("Lightcone: " + std::to_string(missing) +
                            " planes not painted yet (the run did not reach their a_i)");
    }
    return kappa_;
  }

  const Shells<double>& shells() const { return shells_; }
  const Replicas& replicas() const { return replicas_; }
  const std::vector<PlaneGrid>& plane_grids() const { return grids_; }
  const MapGeometry& map_geometry() const { return map_; }
  /// Particles per (Mpc/h)^3 of the painting, 0 for N / V (shell_painting.hpp).
  double particle_density() const { return density_; }
  const std::vector<std::vector<double>>& weights() const { return weights_; }
  /// The painted planes, by shell index (empty unless keep_planes).
  const std::vector<Plane<T>>& planes() const { return planes_; }

 private:
  Shells<double> shells_;
  Replicas replicas_;
  std::vector<PlaneGrid> grids_;
  MapGeometry map_;
  std::vector<std::vector<double>> weights_;
  double density_;
  bool keep_;
  std::vector<bool> done_;
  std::vector<Map<T>> kappa_;
  std::vector<Plane<T>> planes_;
};

}  // namespace diffpm::lensing
