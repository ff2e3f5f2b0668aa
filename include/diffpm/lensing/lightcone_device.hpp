/// \file
/// \brief Lightcone::paint and paint_adjoint (lightcone.hpp) for particles in device memory: the
/// shells are painted on the device (shell_painting_device.hpp), the planes cross to the host
/// for the sampling at the map pixels and the Born sums.
///
/// The particles never leave the device; a plane (n^2 values, a few MB) crosses once per plane
/// in the forward pass and twice in the adjoint (the plane, then its adjoint back). The painted
/// planes are the CPU's bit for bit (integer sums), so the maps are too, and in the host
/// emulation the adjoint's sums are the CPU's as well.
#pragma once

#include <utility>
#include <vector>

#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/lensing/lightcone.hpp"
#include "diffpm/lensing/plane.hpp"
#include "diffpm/lensing/shell_painting_device.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::lensing {

/// Lightcone::paint(a, x) with x in device memory.
template <class T>
void paint(Cuda, Lightcone<T>& cone, double a, particles::ConstView<T> x) {
  for (const std::size_t i : cone.planes_at(a, "Lightcone (device)")) {
    cone.check_not_painted(i);
    const PlaneGrid& g = cone.plane_grids()[i];
    device::Buffer<T> plane(g.size());
    paint_shell(Cuda{}, x, cone.replicas(), cone.shells().chi[i], cone.shells().width,
                PlaneView<T>{g, plane.data()}, cone.particle_density());
    Plane<T> host(g);
    plane.download(host.data.data());
    cone.add_plane(i, std::move(host));
  }
}

/// Lightcone::paint_adjoint(a, x, kappa_bar, x_bar, g) with x and x_bar in device memory.
template <class T>
void paint_adjoint(Cuda, const Lightcone<T>& cone, double a, particles::ConstView<T> x,
                   const std::vector<Map<T>>& kappa_bar, particles::Vec3View<T> x_bar,
                   LightconeGradient& g) {
  for (const std::size_t i : cone.planes_at(a, "Lightcone::paint_adjoint (device)")) {
    const PlaneGrid& grid = cone.plane_grids()[i];
    const double chi = cone.shells().chi[i], width = cone.shells().width;
    device::Buffer<T> plane(grid.size());
    paint_shell(Cuda{}, x, cone.replicas(), chi, width, PlaneView<T>{grid, plane.data()},
                cone.particle_density());
    Plane<T> host(grid);
    plane.download(host.data.data());
    const Plane<T> host_bar = cone.add_plane_adjoint(i, host, kappa_bar, g);
    plane.upload(host_bar.data.data());
    const ShellPaintGradient sg =
        paint_shell_adjoint(Cuda{}, x, cone.replicas(), chi, width,
                            PlaneView<const T>{grid, plane.data()}, x_bar, cone.particle_density());
    g.chi[i] += sg.chi;
    g.width += sg.width;
  }
}

}  // namespace diffpm::lensing
