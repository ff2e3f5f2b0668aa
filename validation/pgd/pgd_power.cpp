// diffpm-pgd-power: the power spectrum of a set of particles after the PGD correction
// (nbody/pgd.hpp) for many parameter sets, one process, so that a fit of PGD's parameters pays
// for reading the particles and planning the FFTs once (fit_pgd.py drives it).
//
//   diffpm-pgd-power --particles X.npy --box L --mesh M --a A [--threads T]
//
// X.npy: N_p x 3 positions in Mpc/h (float or double; diffpm-sim --save-particles writes them).
// The particles are corrected, painted and measured in single precision, as diffpm-sim's default
// does: PGD with the force's default kernels (exact -1/k^2, 4-point finite-difference gradient,
// no smoothing) on the M^3 mesh of side L, CIC paint on that mesh, delta = counts M^3 / N_p - 1,
// P(k) with the CIC window divided out and no shot noise subtracted, in the default bins of
// measure::measure_power -- the estimator and bins of diffpm-sim's power.csv.
//
// Output on stdout, one line each, comma-separated, numbers with 17 significant digits:
//   k,<k_mean of every non-empty bin>
//   n_modes,<modes of every non-empty bin>
//   none,<P of the uncorrected particles>
// then, for every line "ALPHA,KL,KS" (or "ALPHA,KL,KS,MU") read from stdin (blank lines and lines
// starting with # are skipped), the line "ALPHA,KL,KS,MU,<P after PGD at a = A>", flushed at
// once so that a caller can write one set and read its answer. A set that is not valid
// (PgdParameters::validate) answers "error,<message>" and the program goes on.
//
// Errors in the arguments or the file print one line "diffpm-pgd-power: error: ..." and exit
// with status 2.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/diffpm.hpp"
#include "diffpm/io/npy.hpp"
#include "diffpm/nbody/pgd.hpp"

namespace {

using namespace diffpm::cli;
constexpr const char* kProgram = "diffpm-pgd-power";
using T = float;

struct Options {
  std::string particles;
  double box = 0.0, a = 0.0;
  int mesh = 0, threads = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--particles") {
      o.particles = value();
    } else if (flag == "--box") {
      o.box = parse_number(flag, value());
    } else if (flag == "--mesh") {
      const double m = parse_number(flag, value());
      if (m != std::floor(m) || m < 2 || m > 4096)
        throw UsageError("--mesh must be an integer in [2, 4096]");
      o.mesh = int(m);
    } else if (flag == "--a") {
      o.a = parse_number(flag, value());
    } else if (flag == "--threads") {
      const double t = parse_number(flag, value());
      if (t != std::floor(t) || t < 1) throw UsageError("--threads must be an integer >= 1");
      o.threads = int(t);
    } else {
      throw UsageError("unknown flag '" + flag + "'");
    }
  }
  if (o.particles.empty()) throw UsageError("--particles X.npy is required");
  if (!(o.box > 0) || !std::isfinite(o.box)) throw UsageError("--box L (> 0) is required");
  if (o.mesh == 0) throw UsageError("--mesh M is required");
  if (!(o.a > 0) || !(o.a <= 1)) throw UsageError("--a A in (0, 1] is required");
  return o;
}

void print_row(const std::string& head, const std::vector<double>& v) {
  std::string line = head;
  for (double x : v) line += "," + format17(x);
  line += "\n";
  if (std::fputs(line.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
    throw diffpm::IoError("cannot write to stdout");
  }
}

void run(const Options& o) {
  if (o.threads > 0) diffpm::set_threads(o.threads);
  const int threads = o.threads > 0 ? o.threads : diffpm::max_threads();
  std::vector<std::size_t> shape;
  const auto raw = diffpm::io::read_npy<double>(o.particles, shape);
  if (shape.size() != 2 || shape[1] != 3 || shape[0] == 0) {
    throw UsageError("--particles '" + o.particles + "' is not an N x 3 array");
  }
  diffpm::particles::Positions<T> x(shape[0]), y;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      const double v = raw[3 * i + d];
      if (!std::isfinite(v))
        throw UsageError("--particles: position " + std::to_string(i) + " is not finite");
      x[i][d] = T(v);
    }

  const diffpm::mesh::Grid grid({o.mesh, o.mesh, o.mesh}, {o.box, o.box, o.box});
  diffpm::FftPlan<T> plan(grid, threads);
  diffpm::measure::PowerSpectrumOptions po;
  po.deconvolve_cic = true;
  diffpm::mesh::RealField<T> delta(grid);
  const T norm = T(double(grid.size()) / double(x.size()));
  std::vector<std::size_t> keep;  // the non-empty bins, as power.csv writes them
  auto measure = [&](const diffpm::particles::Positions<T>& pos) {
    std::fill(delta.data.begin(), delta.data.end(), T(0));
    diffpm::particles::paint_cic(pos, delta);
    for (auto& v : delta.data) v = v * norm - T(1);
    return diffpm::measure::measure_power(delta, plan, po);
  };
  auto select = [&](const std::vector<double>& v) {
    std::vector<double> out;
    for (std::size_t b : keep) out.push_back(v[b]);
    return out;
  };

  const auto P0 = measure(x);
  std::vector<double> k, n;
  for (std::size_t b = 0; b < P0.size(); ++b) {
    if (P0.n_modes[b] == 0) continue;
    keep.push_back(b);
    k.push_back(P0.k_mean[b]);
    n.push_back(double(P0.n_modes[b]));
  }
  print_row("k", k);
  print_row("n_modes", n);
  print_row("none", select(P0.power));

  diffpm::nbody::PgdCorrection<T> pgd(grid, diffpm::mesh::ForceKernelOptions{}, 0, threads);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<double> v;
    try {
      std::stringstream ss(line);
      std::string item;
      while (std::getline(ss, item, ',')) v.push_back(parse_number("parameter set", item));
      if (v.size() != 3 && v.size() != 4) {
        throw UsageError("'" + line + "' must be ALPHA,KL,KS or ALPHA,KL,KS,MU");
      }
      const diffpm::nbody::PgdParameters p{v[0], v[1], v[2], v.size() == 4 ? v[3] : 0.0};
      p.validate("parameter set");
      pgd.apply(x, p, o.a, y);
      const auto P = measure(y);
      std::vector<double> row = {p.alpha, p.k_l, p.k_s, p.mu};
      for (double q : select(P.power)) row.push_back(q);
      std::string head = format17(row[0]);
      row.erase(row.begin());
      print_row(head, row);
    } catch (const std::exception& e) {
      std::string m = library_message(e);
      for (char& c : m)
        if (c == '\n' || c == '\r' || c == ',') c = ' ';
      if (std::printf("error,%s\n", m.c_str()) < 0 || std::fflush(stdout) != 0) {
        throw diffpm::IoError("cannot write to stdout");
      }
    }
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
