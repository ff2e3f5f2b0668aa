// diffpm-field-level: what the field-level comparison with JaxPM needs and diffpm-sim does not
// write, through the library's public API only (double precision throughout).
//
//   diffpm-field-level [cosmology flags] --box L --particles N --mesh M --out DIR
//                      [--steps S --a-start A0 --a-end A1 --lpt-order 1|2]
//                      [--white-noise W.npy] [--linear-field] [--target T.npy]
//                      [--force-positions X.npy]
//
// --linear-field     DIR/delta_linear.npy: delta_L,n at a = 1 on the N^3 lattice (diffpm's
//                    unnormalised forward-DFT half spectrum, shape N x N x (N/2+1) x 2 for
//                    (re, im); numpy.fft.irfftn of it is the real-space field).
// --target T.npy     the differentiable model (model::ForwardModel) on the noise of
//                    --white-noise: DIR/density.npy (the overdensity at a_end on the force
//                    mesh), the loss L = 1/2 sum_cells (delta - T)^2 on stdout ("loss,L") and
//                    DIR/noise_gradient.npy = dL/dw on the N^3 lattice.
// --force-positions X.npy  DIR/forces.npy: nbody::PmForce (the default kernels: exact -1/k^2,
//                    4-point finite-difference gradient, no smoothing) at the N_p x 3 positions
//                    (Mpc/h) of X.npy on the M^3 force mesh, with 3/2 Omega_m included
//                    (docs/physics.md, "Particle-mesh force").
//
// Errors print one line "diffpm-field-level: error: ..." and exit with status 2.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/diffpm.hpp"
#include "diffpm/io/npy.hpp"

namespace {

using namespace diffpm::cli;
constexpr const char* kProgram = "diffpm-field-level";

struct Options {
  CosmologyFlags cosmology;
  diffpm::nbody::SimulationConfig sim;
  std::string out, white_noise, target, force_positions;
  bool linear_field = false;
};

Options parse(int argc, char** argv) {
  Options o;
  o.sim.steps = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    auto cube = [&](int n) { return std::array<int, 3>{n, n, n}; };
    if (o.cosmology.parse(flag, value)) continue;
    if (flag == "--box") {
      const double L = parse_number(flag, value());
      o.sim.box = {L, L, L};
    } else if (flag == "--particles") {
      o.sim.particles = cube(int(parse_number(flag, value())));
    } else if (flag == "--mesh") {
      o.sim.mesh = cube(int(parse_number(flag, value())));
    } else if (flag == "--steps") {
      o.sim.steps = int(parse_number(flag, value()));
    } else if (flag == "--a-start") {
      o.sim.a_start = parse_number(flag, value());
    } else if (flag == "--a-end") {
      o.sim.a_end = parse_number(flag, value());
    } else if (flag == "--lpt-order") {
      o.sim.lpt_order = int(parse_number(flag, value()));
    } else if (flag == "--white-noise") {
      o.white_noise = value();
    } else if (flag == "--target") {
      o.target = value();
    } else if (flag == "--force-positions") {
      o.force_positions = value();
    } else if (flag == "--linear-field") {
      o.linear_field = true;
    } else if (flag == "--out") {
      o.out = value();
    } else {
      throw UsageError("unknown flag '" + flag + "'");
    }
  }
  o.cosmology.finish();
  if (o.out.empty()) throw UsageError("--out DIR is required");
  o.sim.validate();
  return o;
}

std::vector<double> read_array(const std::string& path, std::size_t count, const char* what) {
  std::vector<std::size_t> shape;
  std::vector<double> v = diffpm::io::read_npy<double>(path, shape);
  if (v.size() != count) {
    throw UsageError(std::string(what) + " '" + path + "' holds " + std::to_string(v.size()) +
                     " values, expected " + std::to_string(count));
  }
  return v;
}

std::vector<std::size_t> shape3(const diffpm::mesh::Grid& g) {
  return {std::size_t(g.n[0]), std::size_t(g.n[1]), std::size_t(g.n[2])};
}

void run(const Options& o) {
  namespace fs = std::filesystem;
  fs::create_directories(o.out);
  const auto& p = o.cosmology.params;
  const diffpm::mesh::Grid lattice(o.sim.particles, o.sim.box);
  const diffpm::mesh::Grid force_grid(o.sim.mesh, o.sim.box);

  if (!o.force_positions.empty()) {
    std::vector<std::size_t> shape;
    const auto raw = diffpm::io::read_npy<double>(o.force_positions, shape);
    if (raw.size() % 3 != 0) throw UsageError("--force-positions: not N x 3 values");
    diffpm::particles::Positions<double> x(raw.size() / 3), F;
    for (std::size_t i = 0; i < x.size(); ++i)
      for (int d = 0; d < 3; ++d) x[i][d] = raw[3 * i + d];
    diffpm::nbody::PmForce<double> force(force_grid);
    force(x, p.Omega_m(), F);
    diffpm::io::write_npy((fs::path(o.out) / "forces.npy").string(), F.data()->data(),
                          {F.size(), 3});
    std::fprintf(stderr, "wrote forces.npy (%zu particles)\n", F.size());
  }

  if (!o.linear_field && o.target.empty()) return;

  diffpm::model::ModelConfig cfg;
  cfg.simulation = o.sim;
  cfg.cosmology = o.cosmology.options();
  cfg.linear_field = o.linear_field;
  cfg.final_density = !o.target.empty();
  diffpm::model::ForwardModel<double> model(cfg);
  diffpm::mesh::RealField<double> noise(lattice);
  if (!o.white_noise.empty()) {
    const auto w = read_array(o.white_noise, lattice.size(), "--white-noise");
    std::copy(w.begin(), w.end(), noise.data.begin());
  } else {
    noise = model.white_noise(o.sim.seed);
  }
  const auto recording =
      o.target.empty() ? diffpm::model::Recording::off : diffpm::model::Recording::on;
  const auto& out = model.forward(p, noise, recording);

  if (o.linear_field) {
    const auto& dl = out.delta_linear;
    std::vector<std::size_t> s = shape3(dl.grid);
    s[2] = std::size_t(dl.grid.complex_nz());
    s.push_back(2);
    diffpm::io::write_npy((fs::path(o.out) / "delta_linear.npy").string(),
                          reinterpret_cast<const double*>(dl.data.data()), s);
    std::fprintf(stderr, "wrote delta_linear.npy\n");
  }
  if (!o.target.empty()) {
    const auto target = read_array(o.target, force_grid.size(), "--target");
    diffpm::mesh::RealField<double> bar(force_grid);
    long double sum = 0;
    for (std::size_t c = 0; c < bar.data.size(); ++c) {
      const double d = out.density.data[c] - target[c];
      sum += static_cast<long double>(d) * d;
      bar.data[c] = d;
    }
    diffpm::io::write_npy((fs::path(o.out) / "density.npy").string(), out.density.data.data(),
                          shape3(force_grid));
    const auto g = model.gradient({}, bar);
    diffpm::io::write_npy((fs::path(o.out) / "noise_gradient.npy").string(), g.noise.data.data(),
                          shape3(lattice));
    std::printf("loss,%s\n", format17(double(sum / 2.0L)).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(parse(argc, argv));
    return 0;
  } catch (const UsageError& e) {
    return fail(kProgram, e.what());
  } catch (const std::exception& e) {
    return fail(kProgram, library_message(e));
  }
}
