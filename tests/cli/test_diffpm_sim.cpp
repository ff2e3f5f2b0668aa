// Tests of the diffpm-sim program, run as a separate process (support/run_program.hpp). The
// program path comes from CMake (DIFFPM_SIM_EXE); without it every test fails.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "diffpm/cosmology/parameters.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/io/fits.hpp"
#include "diffpm/io/npy.hpp"
#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/nbody/pgd_calibration.hpp"
#include "support/run_program.hpp"

namespace {

using namespace diffpm::test;
namespace fs = std::filesystem;

std::string exe() {
#ifdef DIFFPM_SIM_EXE
  return DIFFPM_SIM_EXE;
#else
  FAIL("DIFFPM_SIM_EXE is not defined: the CLI tests need diffpm-sim (DIFFPM_BUILD_EXAMPLES=ON)");
  return "";
#endif
}

/// A small run: 32^3 particles on a 64^3 mesh in a 500 Mpc/h box, 5 steps.
std::vector<std::string> small(const std::string& out) {
  return {"--box", "500", "--particles", "32", "--mesh", "64", "--steps", "5", "--out", out};
}

std::vector<std::vector<double>> read_csv(const fs::path& path, std::string& header) {
  std::ifstream in(path);
  REQUIRE(in);
  std::getline(in, header);
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<double> row;
    for (const auto& f : split(line, ',')) row.push_back(parse_double(f));
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

TEST_CASE("cli: diffpm-sim writes power.csv with P close to linear theory on large scales",
          "[cli][sim]") {
  const TempDir dir;
  auto args = small(dir.path.string());
  args.push_back("--fixed-amplitude");  // no cosmic variance in the initial power
  const Result r = run_program(exe(), args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.empty());  // results go to files, progress to stderr
  CHECK(r.err.find("step 5/5") != std::string::npos);
  std::string header;
  const auto rows = read_csv(dir.path / "power.csv", header);
  CHECK(header == "k,P,P_lin,n_modes");
  REQUIRE(rows.size() >= 10);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 4);
    CHECK(row[0] > 0);
    CHECK(row[2] > 0);
    CHECK(row[3] >= 1);
  }
  // With fixed amplitudes the lowest bin (k = 0.016 h/Mpc, 18 modes) starts at exactly P_lin
  // and grows linearly up to the propagator damping and mode coupling, ~0.2% there at z = 0
  // (tests/nbody/test_simulation.cpp); measured 0.08%, tolerance 1%.
  CHECK(rows[0][1] / rows[0][2] == Approx(1.0).epsilon(0.01));
  // Nothing else is left in the directory: no temporary files.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("cli: diffpm-sim saves particles and density as .npy", "[cli][sim]") {
  const TempDir dir;
  auto args = small(dir.path.string());
  args.insert(args.end(),
              {"--save-particles", "--save-density", "--precision", "double", "--lpt-order", "1"});
  const Result r = run_program(exe(), args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::vector<std::size_t> shape;
  const auto x = diffpm::io::read_npy<double>((dir.path / "particles_x.npy").string(), shape);
  CHECK(shape == std::vector<std::size_t>{32 * 32 * 32, 3});
  diffpm::io::read_npy<double>((dir.path / "particles_p.npy").string(), shape);
  CHECK(shape == std::vector<std::size_t>{32 * 32 * 32, 3});
  const auto delta = diffpm::io::read_npy<double>((dir.path / "density.npy").string(), shape);
  CHECK(shape == std::vector<std::size_t>{64, 64, 64});
  double mean = 0;
  for (double v : delta) mean += v;
  CHECK(mean / double(delta.size()) == Approx(0.0).margin(1e-12));  // an overdensity
}

TEST_CASE("cli: diffpm-sim is reproducible for a seed", "[cli][sim]") {
  const TempDir a, b;
  auto args_a = small(a.path.string()), args_b = small(b.path.string());
  for (auto* args : {&args_a, &args_b})
    args->insert(args->end(), {"--seed", "123", "--threads", "1"});
  REQUIRE(run_program(exe(), args_a).status == 0);
  REQUIRE(run_program(exe(), args_b).status == 0);
  std::string h;
  CHECK(read_csv(a.path / "power.csv", h) == read_csv(b.path / "power.csv", h));
}

TEST_CASE("cli: diffpm-sim --backend cuda runs the device code path or says why it cannot",
          "[cli][sim]") {
  // DIFFPM_TEST_DEVICE is the build's DIFFPM_DEVICE: omp runs the device code on the host and
  // must give the CPU's bytes; cuda needs a GPU (none on CI machines: a clear error then); none
  // has no device code at all.
  const TempDir cpu, dev;
  auto args_cpu = small(cpu.path.string()), args_dev = small(dev.path.string());
  args_cpu.insert(args_cpu.end(), {"--seed", "7", "--backend", "cpu"});
  args_dev.insert(args_dev.end(), {"--seed", "7", "--backend", "cuda"});
  REQUIRE(run_program(exe(), args_cpu).status == 0);
  const Result r = run_program(exe(), args_dev);
  const std::string device = DIFFPM_TEST_DEVICE;
  if (device == "omp") {
    REQUIRE(r.status == 0);
    CHECK_THAT(r.err, Catch::Contains("backend cuda") && Catch::Contains("on the device"));
    std::ifstream a(cpu.path / "power.csv"), b(dev.path / "power.csv");
    std::stringstream sa, sb;
    sa << a.rdbuf();
    sb << b.rdbuf();
    CHECK(sa.str() == sb.str());
  } else if (device == "cuda") {
    if (r.status != 0) {  // no GPU here: the program's error exit, saying so
      CHECK(r.status == 2);
      CHECK_THAT(r.err, Catch::Contains("no CUDA device"));
    }
  } else {
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("without the device backend"));
  }
  const Result bad = run_program(exe(), {"--backend", "gpu", "--out", dev.path.string()});
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Catch::Contains("--backend 'gpu'"));
}

TEST_CASE("cli: diffpm-sim --backend cuda makes the CPU's maps and gradient",
          "[cli][sim][lensing]") {
  // A lensing run with a loss against another seed's map: the maps, the loss gradient and the
  // noise gradient of the device code path (the omp build runs it on the host) must be the
  // CPU's bytes. Other builds: the clear error of the test above.
  const std::string device = DIFFPM_TEST_DEVICE;
  const TempDir dir;
  auto args = [&](const std::string& out, const std::string& seed) {
    return std::vector<std::string>{"--box",      "200",      "--particles",
                                    "16",         "--mesh",   "32",
                                    "--steps",    "3",        "--lensing",
                                    "--fov",      "4",        "--pixels",
                                    "32",         "--planes", "5",
                                    "--z-source", "1",        "--seed",
                                    seed,         "--out",    (dir.path / out).string()};
  };
  REQUIRE(run_program(exe(), args("target", "3")).status == 0);
  auto with_loss = [&](const std::string& out, const std::string& backend) {
    auto a = args(out, "7");
    a.insert(a.end(), {"--loss-target", (dir.path / "target" / "kappa_0.fits").string(),
                       "--noise-sigma", "0.01", "--save-noise-gradient", "--backend", backend});
    return run_program(exe(), a);
  };
  const Result cpu = with_loss("cpu", "cpu");
  INFO(cpu.err);
  REQUIRE(cpu.status == 0);
  const Result dev = with_loss("dev", "cuda");
  INFO(dev.err);
  if (device != "omp") {
    if (dev.status != 0) CHECK(dev.status == 2);
    return;
  }
  REQUIRE(dev.status == 0);
  auto bytes = [&](const std::string& run, const std::string& file) {
    std::ifstream in(dir.path / run / file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  for (const char* file : {"kappa_0.npy", "noise_gradient.npy", "gradient.csv"}) {
    INFO(file);
    CHECK(!bytes("cpu", file).empty());
    CHECK(bytes("cpu", file) == bytes("dev", file));
  }
}

TEST_CASE("cli: diffpm-sim rejects bad input with exit code 2 naming the flag and value",
          "[cli][sim][errors]") {
  const TempDir dir;
  const std::string out = dir.path.string();
  struct Bad {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Bad> cases = {
      {{"--particles", "0", "--out", out}, "--particles '0'"},
      {{"--particles", "2.5", "--out", out}, "--particles '2.5'"},
      {{"--mesh", "100", "--particles", "64", "--out", out}, "--mesh 100"},
      {{"--box", "-5", "--out", out}, "--box '-5'"},
      {{"--steps", "-1", "--out", out}, "--steps '-1'"},
      {{"--a-start", "0", "--out", out}, "a_start = 0"},
      {{"--a-end", "1.5", "--out", out}, "a_end = 1.5"},
      {{"--lpt-order", "3", "--out", out}, "--lpt-order '3'"},
      {{"--seed", "-1", "--out", out}, "--seed '-1'"},
      {{"--precision", "half", "--out", out}, "--precision 'half'"},
      {{"--stepper", "rk4", "--out", out}, "--stepper 'rk4'"},
      {{"--h", "-0.7", "--out", out}, "h = -0.7"},
      {{"--frobnicate", "--out", out}, "--frobnicate"},
      {{"--box", "100"}, "missing --out"},
      {{"--out", (dir.path / "power.csv" / "x").string(), "--particles", "8", "--mesh", "8"},
       "--out"},
  };
  { std::ofstream(dir.path / "power.csv") << "not a directory\n"; }
  for (const auto& c : cases) {
    const Result r = run_program(exe(), c.args);
    INFO("args ending " << c.args.back() << ": " << r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("diffpm-sim: error: ", 0) == 0);
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
  const Result help = run_program(exe(), {"--help"});
  CHECK(help.status == 0);
  for (const char* flag : {"--box", "--particles", "--mesh", "--steps", "--a-start", "--a-end",
                           "--lpt-order", "--seed", "--fixed-amplitude", "--precision", "--threads",
                           "--out", "--Omega_c", "--no-radiation"})
    CHECK(help.out.find(flag) != std::string::npos);
}

TEST_CASE("cli: diffpm-sim --lensing writes a FITS, npy and PNG map and a C_ell table per source",
          "[cli][sim][lensing]") {
  const TempDir dir;
  { std::ofstream(dir.path / "bin.txt") << "# z n(z)\n0.2 0\n0.5 1\n0.8 2\n1.1 1\n1.4 0\n"; }
  // Sources in the order given: z = 1, then the n(z) file, then z = 0.5.
  const std::vector<std::string> args = {"--box",
                                         "200",
                                         "--particles",
                                         "32",
                                         "--mesh",
                                         "64",
                                         "--steps",
                                         "3",
                                         "--lensing",
                                         "--fov",
                                         "5",
                                         "--pixels",
                                         "64",
                                         "--planes",
                                         "6",
                                         "--z-source",
                                         "1",
                                         "--nz",
                                         (dir.path / "bin.txt").string(),
                                         "--z-source",
                                         "0.5",
                                         "--random-shifts",
                                         "--random-orientations",
                                         "--out",
                                         (dir.path / "out").string()};
  const Result r = run_program(exe(), args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const fs::path out = dir.path / "out";
  std::vector<double> variance;
  for (int i = 0; i < 3; ++i) {
    const std::string stem = (out / ("kappa_" + std::to_string(i))).string();
    const auto fits = diffpm::io::read_fits<float>(stem + ".fits");
    CHECK(fits.map.geometry == diffpm::lensing::MapGeometry(64, 5.0));
    REQUIRE(fits.find("BIN") != nullptr);
    CHECK(std::get<std::int64_t>(fits.find("BIN")->value) == i);
    if (i == 1) {
      REQUIRE(fits.find("NZFILE") != nullptr);
      CHECK(std::get<std::string>(fits.find("NZFILE")->value) == "bin.txt");
      CHECK(fits.find("ZSOURCE") == nullptr);
    } else {
      REQUIRE(fits.find("ZSOURCE") != nullptr);
      CHECK(std::get<double>(fits.find("ZSOURCE")->value) == (i == 0 ? 1.0 : 0.5));
    }
    std::vector<std::size_t> shape;
    const auto npy = diffpm::io::read_npy<float>(stem + ".npy", shape);
    CHECK(shape == std::vector<std::size_t>{64, 64});
    CHECK(npy == std::vector<float>(fits.map.data.begin(), fits.map.data.end()));
    CHECK(fs::file_size(stem + ".png") > 0);
    double var = 0.0;
    for (float v : npy) var += double(v) * v;
    variance.push_back(var / double(npy.size()));

    // The table: the map's own binned C_ell, and Limber theory for the same source.
    std::string header;
    const auto rows = read_csv(out / ("cl_" + std::to_string(i) + ".csv"), header);
    CHECK(header == "ell,cl,cl_limber_linear,cl_limber_halofit,n_modes");
    REQUIRE(rows.size() >= 8);
    const auto ps = diffpm::lensing::angular_power_spectrum(
        fits.map,
        diffpm::lensing::log_ell_edges(diffpm::lensing::ell_fundamental(fits.map.geometry),
                                       diffpm::lensing::ell_nyquist(fits.map.geometry), 20));
    std::size_t b = 0;
    for (const auto& row : rows) {
      REQUIRE(row.size() == 5);
      while (b < ps.n_modes.size() && ps.n_modes[b] == 0) ++b;
      REQUIRE(b < ps.n_modes.size());
      CHECK(row[0] == Approx(ps.ell_mean[b]).epsilon(1e-12));
      CHECK(row[1] == Approx(ps.cl[b]).epsilon(1e-6));
      CHECK(row[4] == double(ps.n_modes[b]));
      CHECK(row[2] > 0.0);
      // Halofit adds power to linear theory on every scale of these maps (ell >= 72).
      CHECK(row[3] > row[2]);
      ++b;
    }
  }
  // Lensing grows with source distance: z = 1 > the bin around z = 0.8 > z = 0.5.
  CHECK(variance[0] > variance[1]);
  CHECK(variance[1] > variance[2]);
  // Nothing else in the directory: 3 x (fits, npy, png, csv) and power.csv, no temporaries.
  int files = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    (void)e;
    ++files;
  }
  CHECK(files == 13);
}

TEST_CASE("cli: diffpm-sim --lensing with --steps 0 makes maps from LPT alone",
          "[cli][sim][lensing]") {
  const TempDir dir;
  const Result r = run_program(
      exe(), {"--box", "200", "--particles", "32", "--mesh", "32", "--steps", "0", "--lensing",
              "--pixels", "32", "--planes", "4", "--z-source", "1", "--out", dir.path.string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("step 1/") == std::string::npos);
  CHECK(fs::exists(dir.path / "kappa_0.fits"));
}

TEST_CASE("cli: diffpm-sim rejects bad lensing input with exit code 2 naming the flag",
          "[cli][sim][lensing][errors]") {
  const TempDir dir;
  const std::string out = dir.path.string();
  const std::vector<std::string> base = {"--box",  "200", "--particles", "8",
                                         "--mesh", "8",   "--out",       out};
  struct Bad {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Bad> cases = {
      {{"--fov", "5"}, "--fov needs --lensing"},
      {{"--z-source", "1"}, "--z-source needs --lensing"},
      {{"--random-orientations"}, "--random-orientations needs --lensing"},
      {{"--lensing"}, "--lensing needs sources"},
      {{"--lensing", "--z-source", "1,,2"}, "--z-source '1,,2'"},
      {{"--lensing", "--z-source", "-1"}, "--z-source '-1'"},
      {{"--lensing", "--nz", (dir.path / "missing.txt").string()}, "missing.txt"},
      {{"--lensing", "--z-source", "1", "--fov", "120"}, "120"},
      {{"--lensing", "--z-source", "1", "--pixels", "1"}, "--pixels '1'"},
      {{"--lensing", "--z-source", "1", "--planes", "0"}, "--planes '0'"},
      {{"--lensing", "--z-source", "1", "--plane-cell", "-1"}, "plane cell = -1"},
      {{"--lensing", "--z-source", "1", "--a-end", "0.5"}, "--a-end 1"},
  };
  for (const auto& c : cases) {
    auto args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Result r = run_program(exe(), args);
    INFO("args " << c.args.front() << " ...: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.rfind("diffpm-sim: error: ", 0) == 0);
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
  const Result help = run_program(exe(), {"--help"});
  for (const char* flag :
       {"--lensing", "--fov", "--pixels", "--planes", "--z-source", "--nz", "--plane-cell",
        "--random-shifts", "--random-orientations", "--shift-seed"})
    CHECK(help.out.find(flag) != std::string::npos);
}

namespace {

/// The loss tests' run: 16^3 particles in a 64 Mpc/h box on a 32^3 mesh, 3 FastPM steps from
/// a = 0.5, a 3 degree map of 32^2 pixels of sources at z = 0.5 from 6 planes; one thread, which
/// is also the fastest for so small a run on a busy machine. About 0.1 s a run, gradient included.
std::vector<std::string> small_lensing(const fs::path& out, const std::string& seed) {
  return {"--box",     "64",        "--particles", "16",         "--mesh", "32",     "--steps",
          "3",         "--a-start", "0.5",         "--lensing",  "--fov",  "3",      "--pixels",
          "32",        "--planes",  "6",           "--z-source", "0.5",    "--seed", seed,
          "--threads", "1",         "--out",       out.string()};
}

/// Arguments a, then b.
std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// The value of the line "loss,<L>", which must be all of stdout.
double loss_of(const Result& r) {
  INFO("stdout: " << r.out);
  REQUIRE(r.out.rfind("loss,", 0) == 0);
  REQUIRE(r.out.back() == '\n');
  REQUIRE(r.out.find('\n') == r.out.size() - 1);
  return parse_double(r.out.substr(5, r.out.size() - 6));
}

struct GradientRow {
  std::string parameter;
  double value = 0, derivative = 0;
};

std::vector<GradientRow> read_gradient(const fs::path& path, std::string& header) {
  std::ifstream in(path);
  REQUIRE(in);
  std::getline(in, header);
  std::vector<GradientRow> rows;
  std::string line;
  while (std::getline(in, line)) {
    const auto f = split(line, ',');
    REQUIRE(f.size() == 3);
    rows.push_back({f[0], parse_double(f[1]), parse_double(f[2])});
  }
  return rows;
}

/// %.17g, as the program prints: every double reads back exactly.
std::string format17(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Makes a target map with seed 1 in double: DIR/target/kappa_0.fits.
fs::path make_target(const fs::path& dir, const std::vector<std::string>& extra = {}) {
  const fs::path out = dir / "target";
  const Result r = run_program(exe(), small_lensing(out, "1") + extra);
  INFO(r.err);
  REQUIRE(r.status == 0);
  return out / "kappa_0.fits";
}

const std::vector<std::string> flat_parameter_names = {"Omega_c", "Omega_b", "h", "n_s",
                                                       "sigma8",  "w0",      "wa"};

}  // namespace

TEST_CASE("cli: diffpm-sim --loss-target prints the loss and writes gradient.csv",
          "[cli][sim][lensing][gradient]") {
  const TempDir dir;
  const fs::path target = make_target(dir.path, {"--precision", "double"});
  const fs::path out = dir.path / "B";
  const Result r = run_program(
      exe(), small_lensing(out, "2") + std::vector<std::string>{"--loss-target", target.string(),
                                                                "--noise-sigma", "0.01",
                                                                "--save-noise-gradient"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const double L = loss_of(r);
  CHECK(std::isfinite(L));
  CHECK(L > 0);

  // The loss is that of the maps the run wrote (float, the default precision) against the
  // target: recomputed here in double from the same numbers, so equal but for summation order.
  std::vector<std::size_t> shape;
  const auto kappa = diffpm::io::read_npy<float>((out / "kappa_0.npy").string(), shape);
  const auto t = diffpm::io::read_fits<double>(target.string()).map.data;
  REQUIRE(kappa.size() == t.size());
  double sum = 0;
  for (std::size_t i = 0; i < t.size(); ++i) sum += (kappa[i] - t[i]) * (kappa[i] - t[i]);
  CHECK(L == Approx(sum / (2 * 0.01 * 0.01)).epsilon(1e-12));

  std::string header;
  const auto rows = read_gradient(out / "gradient.csv", header);
  CHECK(header == "parameter,value,dL_dparameter");
  REQUIRE(rows.size() == flat_parameter_names.size());
  const diffpm::cosmology::Parameters<double> defaults;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i].parameter == flat_parameter_names[i]);
    // The value column: the defaults, whose 17 digits read back exactly (Omega_k left out).
    const auto p = diffpm::cosmology::Parameter(i < 5 ? i : i + 1);
    CHECK(rows[i].value == defaults[p]);
    CHECK(std::isfinite(rows[i].derivative));
    CHECK(rows[i].derivative != 0.0);
  }

  // dL/dnoise on the 16^3 lattice, in the run's precision.
  const auto g = diffpm::io::read_npy<double>((out / "noise_gradient.npy").string(), shape);
  CHECK(shape == std::vector<std::size_t>{16, 16, 16});
  CHECK(file_bytes(out / "noise_gradient.npy").find("'<f4'") != std::string::npos);
  double norm = 0;
  for (double v : g) norm += v * v;
  CHECK(std::isfinite(norm));
  CHECK(norm > 0);
  // The usual outputs are there too: map, npy, png, C_ell, power.csv; and nothing else.
  int files = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    (void)e;
    ++files;
  }
  CHECK(files == 7);
}

TEST_CASE("cli: diffpm-sim --loss-target with the target's own seed has a vanishing loss",
          "[cli][sim][lensing][gradient]") {
  const TempDir dir;
  const std::vector<std::string> precision = {"--precision", "double"};
  const fs::path target = make_target(dir.path, precision);
  const std::vector<std::string> loss = {"--loss-target", target.string(), "--noise-sigma", "0.01"};
  const Result same = run_program(exe(), small_lensing(dir.path / "same", "1") + precision + loss);
  const Result other =
      run_program(exe(), small_lensing(dir.path / "other", "2") + precision + loss);
  INFO(same.err << other.err);
  REQUIRE(same.status == 0);
  REQUIRE(other.status == 0);
  // The model integrates a fixed-point state, run_lensing_simulation floating point: the maps
  // of one seed differ by ~1e-11 relative. Even at 1e-9 of |kappa| < 0.1 in each of the 1024
  // pixels, L < 1024 (1e-10)^2 / (2 0.01^2) = 5e-14; measured 3e-23. Another seed: ~250.
  const double L_same = loss_of(same), L_other = loss_of(other);
  CHECK(L_same >= 0);
  CHECK(L_same < 1e-12);
  CHECK(L_other > 1);
  // dL/dtheta is linear in the residual kappa - target, which by the bounds above is at most
  // (L_same / L_other)^(1/2) = 1e-6 of the other seed's: so is each |dL/dtheta| (none of the
  // other seed's is near 0). Measured ratios: below 1e-12 for every parameter.
  std::string header;
  const auto g_same = read_gradient(dir.path / "same" / "gradient.csv", header);
  const auto g_other = read_gradient(dir.path / "other" / "gradient.csv", header);
  REQUIRE(g_same.size() == 7);
  REQUIRE(g_other.size() == 7);
  for (std::size_t i = 0; i < g_same.size(); ++i) {
    INFO(g_same[i].parameter << ": " << g_same[i].derivative << " vs " << g_other[i].derivative);
    CHECK(std::fabs(g_same[i].derivative) < 1e-6 * std::fabs(g_other[i].derivative));
  }
}

TEST_CASE("cli: diffpm-sim's dL/dtheta matches finite differences of its loss over runs",
          "[cli][sim][lensing][gradient]") {
  // Each run is a separate process: this checks that nothing in the model's discretisation
  // depends on the parameters (the planes' angular grids come from a fixed reference cosmology;
  // when they followed each run's chi_i, w0 and wa were off by 0.8% here).
  const TempDir dir;
  const std::vector<std::string> common = {"--precision", "double"};
  const fs::path target = make_target(dir.path, common);
  const auto args =
      common + std::vector<std::string>{"--loss-target", target.string(), "--noise-sigma", "0.01"};
  const Result r = run_program(exe(), small_lensing(dir.path / "g", "2") + args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::string header;
  const auto g = read_gradient(dir.path / "g" / "gradient.csv", header);
  REQUIRE(g.size() == 7);
  // Step 1e-7 (relative for Omega_c, absolute for w0), where the CIC kinks' bias and the
  // fixed-point rounding are both ~1e-5 (tests/model/test_forward_model.cpp); measured 4e-6 for
  // w0 and 3e-7 for Omega_c, against 1e-4.
  for (const std::size_t i : {std::size_t(0), std::size_t(5)}) {
    const double x = g[i].value, h = i == 0 ? 1e-7 * x : 1e-7;
    auto at = [&](double v) {
      const auto run_args = small_lensing(dir.path / "fd", "2") + args +
                            std::vector<std::string>{"--" + g[i].parameter, format17(v)};
      const Result fd = run_program(exe(), run_args);
      INFO(fd.err);
      REQUIRE(fd.status == 0);
      return loss_of(fd);
    };
    const double fd = (at(x + h) - at(x - h)) / (2 * h);
    INFO(g[i].parameter << ": gradient " << g[i].derivative << ", finite difference " << fd);
    CHECK(g[i].derivative == Approx(fd).epsilon(1e-4));
  }
}

TEST_CASE("cli: diffpm-sim --adjoint store, reverse and checkpoint give the same bytes",
          "[cli][sim][lensing][gradient]") {
  const TempDir dir;
  const fs::path target = make_target(dir.path);
  const std::vector<std::vector<std::string>> modes = {
      {"--adjoint", "store"},
      {"--adjoint", "reverse"},
      {"--adjoint", "checkpoint", "--checkpoint-every", "2"},
      {}};  // the default: reverse
  std::vector<Result> results;
  for (std::size_t m = 0; m < modes.size(); ++m) {
    const auto args = small_lensing(dir.path / std::to_string(m), "2") + modes[m] +
                      std::vector<std::string>{"--loss-target", target.string(), "--noise-sigma",
                                               "0.01", "--save-noise-gradient"};
    results.push_back(run_program(exe(), args));
    INFO(results.back().err);
    REQUIRE(results.back().status == 0);
  }
  CHECK(results[1].err.find("--adjoint reverse") != std::string::npos);
  CHECK(results[3].err.find("--adjoint reverse") != std::string::npos);
  for (std::size_t m = 1; m < modes.size(); ++m) {
    INFO("mode " << m);
    CHECK(results[m].out == results[0].out);
    for (const char* file : {"gradient.csv", "noise_gradient.npy", "kappa_0.npy"}) {
      CHECK(file_bytes(dir.path / std::to_string(m) / file) == file_bytes(dir.path / "0" / file));
    }
  }
}

TEST_CASE("cli: diffpm-sim rejects bad --loss-target input naming the flag and value",
          "[cli][sim][lensing][gradient][errors]") {
  const TempDir dir;
  const fs::path target = make_target(dir.path);
  // Other targets, from quick LPT-only runs (--steps 0): other pixels, field, source.
  auto other = [&](const std::string& name, const std::string& flag, const std::string& value) {
    auto args = small_lensing(dir.path / name, "1");
    *(std::find(args.begin(), args.end(), "--steps") + 1) = "0";
    *(std::find(args.begin(), args.end(), flag) + 1) = value;
    const Result r = run_program(exe(), args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    return (dir.path / name / "kappa_0.fits").string();
  };
  const std::string pixels16 = other("p16", "--pixels", "16");
  const std::string fov4 = other("fov4", "--fov", "4");
  const std::string z1 = other("z1", "--z-source", "1");
  {
    diffpm::lensing::Map<float> m(diffpm::lensing::MapGeometry(32, 3.0));
    m.data[3] = std::nanf("");
    diffpm::io::write_fits((dir.path / "nan.fits").string(), m);
    std::ofstream(dir.path / "text.fits") << "not a FITS file\n";
  }
  const std::string t = target.string();
  const std::string missing = (dir.path / "missing.fits").string();
  const std::string text = (dir.path / "text.fits").string();
  const fs::path out = dir.path / "out";
  const std::vector<std::string> sigma = {"--noise-sigma", "0.01"};
  struct Bad {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Bad> cases = {
      {{"--loss-target", pixels16}, "16 x 16 pixels, the run makes 32 x 32"},
      {{"--loss-target", fov4}, "field of view 4 deg, the run's is 3 deg"},
      {{"--loss-target", z1}, "z = 1 (ZSOURCE), the run's source 0 is at z = 0.5"},
      {{"--loss-target", t, "--loss-target", t}, "2 --loss-target map(s) for 1 source(s)"},
      {{"--loss-target", missing}, "--loss-target '" + missing + "': cannot open FITS file"},
      {{"--loss-target", text}, "--loss-target '" + text + "': cannot open FITS file"},
      {{"--loss-target", (dir.path / "nan.fits").string()}, "pixel (3, 0) is nan"},
      {{"--loss-target", t, "--noise-sigma", "0"}, "--noise-sigma '0' must be > 0"},
      {{"--loss-target", t, "--noise-sigma", "-1"}, "--noise-sigma '-1' must be > 0"},
      {{"--loss-target", t, "--noise-sigma", "nan"}, "--noise-sigma 'nan' is not finite"},
      {{"--adjoint", "bogus"}, "--adjoint 'bogus' must be store, reverse or checkpoint"},
      {{"--adjoint", "checkpoint", "--checkpoint-every", "0"}, "--checkpoint-every '0'"},
      {{"--checkpoint-every", "2"}, "--checkpoint-every needs --adjoint checkpoint"},
      {{"--save-particles"}, "--save-particles is not available with --loss-target"},
  };
  auto check_fails = [&](const std::vector<std::string>& args, const std::string& expect) {
    const Result r = run_program(exe(), args);
    INFO("expecting '" << expect << "': " << r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("diffpm-sim: error: ", 0) == 0);
    CHECK(r.err.find(expect) != std::string::npos);
    CHECK(!fs::exists(out / "gradient.csv"));
  };
  for (const auto& c : cases) {
    // --noise-sigma first, so that a later one in the case wins.
    auto args = small_lensing(out, "2") + sigma + c.args;
    if (c.args.front() != "--loss-target")
      args = args + std::vector<std::string>{"--loss-target", t};
    check_fails(args, c.expect);
  }
  // Flags without what they need.
  const std::vector<std::string> plain = {"--box", "64",      "--particles", "16",    "--mesh",
                                          "32",    "--steps", "0",           "--out", out.string()};
  check_fails(plain + std::vector<std::string>{"--loss-target", t} + sigma,
              "--loss-target needs --lensing");
  check_fails(small_lensing(out, "2") + std::vector<std::string>{"--loss-target", t},
              "--loss-target needs --noise-sigma");
  for (const std::string flag : {"--save-noise-gradient", "--noise-sigma", "--adjoint"}) {
    auto args = small_lensing(out, "2") + std::vector<std::string>{flag};
    if (flag == "--noise-sigma") args.push_back("0.01");
    if (flag == "--adjoint") args.push_back("store");
    check_fails(args, flag + " needs --loss-target");
  }

  // A run that fails half-way (power.csv cannot be written: a directory has its name) leaves no
  // gradient.csv, not even one an earlier run left there beside the maps it replaced.
  fs::create_directories(out / "power.csv");
  { std::ofstream(out / "gradient.csv") << "an earlier run's\n"; }
  const Result r = run_program(
      exe(), small_lensing(out, "2") + sigma + std::vector<std::string>{"--loss-target", t});
  INFO(r.err);
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("diffpm-sim: error: cannot rename") != std::string::npos);
  CHECK(fs::exists(out / "kappa_0.fits"));
  CHECK(!fs::exists(out / "gradient.csv"));

  const Result help = run_program(exe(), {"--help"});
  for (const char* flag : {"--loss-target", "--noise-sigma", "--save-noise-gradient", "--adjoint",
                           "--checkpoint-every", "Omega_k"})
    CHECK(help.out.find(flag) != std::string::npos);
}

TEST_CASE("cli: diffpm-sim --white-noise runs from the caller's noise, as --seed does",
          "[cli][sim]") {
  // The seed's noise written to a file and handed back must give the same particles, bit for
  // bit (the seed only makes the noise).
  const TempDir dir;
  const fs::path a = dir.path / "a", b = dir.path / "b", noise = dir.path / "noise.npy";
  const std::vector<std::string> run = {"--box",       "100",    "--particles",     "8",
                                        "--mesh",      "16",     "--steps",         "2",
                                        "--precision", "double", "--save-particles"};
  auto with = [&](std::vector<std::string> extra, const fs::path& out) {
    auto args = run;
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("--out");
    args.push_back(out.string());
    return run_program(exe(), args);
  };
  const auto w = diffpm::ic::white_noise<double>(diffpm::mesh::Grid::cube(8, 100.0), 9);
  diffpm::io::write_npy(noise.string(), w.data.data(), {8, 8, 8});
  const Result ra = with({"--seed", "9"}, a);
  INFO(ra.err);
  REQUIRE(ra.status == 0);
  const Result rb = with({"--white-noise", noise.string()}, b);
  INFO(rb.err);
  REQUIRE(rb.status == 0);
  std::vector<std::size_t> sa, sb;
  const auto xa = diffpm::io::read_npy<double>((a / "particles_x.npy").string(), sa);
  const auto xb = diffpm::io::read_npy<double>((b / "particles_x.npy").string(), sb);
  CHECK(sa == sb);
  CHECK(xa == xb);

  const Result both = with({"--seed", "9", "--white-noise", noise.string()}, a);
  CHECK(both.status == 2);
  CHECK(both.err.find("--seed and --white-noise") != std::string::npos);
  const Result wrong =
      run_program(exe(), {"--box", "100", "--particles", "4", "--mesh", "8", "--steps", "1",
                          "--white-noise", noise.string(), "--out", a.string()});
  CHECK(wrong.status == 2);
  CHECK(wrong.err.find("shape (8 x 8 x 8)") != std::string::npos);
}

TEST_CASE("cli: diffpm-sim --pgd-params raises P(k) in its band as linear theory says",
          "[cli][sim][pgd]") {
  // In the linear regime the PGD displacement S = -alpha grad psi, lap psi = O(k) delta, has
  // div S = -alpha O delta, so the corrected density is delta (1 + alpha O(k)) and
  // P_pgd / P = (1 + alpha O(k))^2 to first order in delta. On the mesh (cells of h = 7.8
  // Mpc/h) the displacement is read out from a CIC-painted density, so each mode carries the
  // CIC window twice: W^2 = 1 - k^2 h^2 / 6 to second order in k h (the 4-point gradient's
  // error is O(k^4 h^4)). Expected: (1 + alpha O W^2)^2. A 500 Mpc/h box at a = 0.5 is linear
  // for k < 0.1 h/Mpc up to mode coupling, which moves power into the band's upper edge from
  // below: measured |ratio - expected| <= 0.012 there while the correction itself reaches 0.9;
  // tolerance 0.03. alpha = 0 gives the run without the flag, byte for byte.
  const TempDir dir;
  auto run = [&](const std::string& name, const std::vector<std::string>& extra) {
    auto args = small((dir.path / name).string()) +
                std::vector<std::string>{"--a-end", "0.5", "--precision", "double"} + extra;
    const Result r = run_program(exe(), args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string header;
    return read_csv(dir.path / name / "power.csv", header);
  };
  const auto plain = run("plain", {});
  const double alpha = 0.5, k_l = 0.03, k_s = 0.15, h = 500.0 / 64;
  const auto pgd = run("pgd", {"--pgd-params", "0.5,0.03,0.15"});
  run("off", {"--pgd-params", "0,0.03,0.15"});
  CHECK(file_bytes(dir.path / "off" / "power.csv") == file_bytes(dir.path / "plain" / "power.csv"));
  REQUIRE(pgd.size() == plain.size());
  int checked = 0;
  for (std::size_t b = 0; b < plain.size(); ++b) {
    const double k = plain[b][0];
    if (k > 0.1) break;
    const double O = std::exp(-k_l * k_l / (k * k)) * std::exp(-std::pow(k / k_s, 4));
    const double expected = std::pow(1 + alpha * O * (1 - k * k * h * h / 6), 2);
    INFO("k = " << k << ": P_pgd / P = " << pgd[b][1] / plain[b][1] << ", linear theory "
                << expected);
    CHECK(std::abs(pgd[b][1] / plain[b][1] - expected) < 0.03);
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("cli: diffpm-sim --pgd-params corrects the maps and differentiates its parameters",
          "[cli][sim][lensing][gradient][pgd]") {
  const TempDir dir;
  const std::vector<std::string> common = {"--precision", "double"};
  const fs::path target = make_target(dir.path, common);
  const std::vector<std::string> pgd = {"--pgd-params", "0.3,0.1,1.2,-1"};
  // The planes are painted from corrected particles: the maps change.
  const Result plain = run_program(exe(), small_lensing(dir.path / "plain", "2") + common);
  const Result corrected =
      run_program(exe(), small_lensing(dir.path / "corrected", "2") + common + pgd);
  REQUIRE(plain.status == 0);
  REQUIRE(corrected.status == 0);
  CHECK(file_bytes(dir.path / "plain" / "kappa_0.npy") !=
        file_bytes(dir.path / "corrected" / "kappa_0.npy"));
  // With a loss, gradient.csv gains the four PGD parameters; dL/dalpha and dL/dk_s match
  // central differences over runs (steps 1e-6 relative; the CIC kinks of the corrected
  // positions bias them as the other parameters' (tests/model/test_forward_model.cpp): 1e-4).
  const std::vector<std::string> loss = {"--loss-target", target.string(), "--noise-sigma", "0.01"};
  const Result r = run_program(exe(), small_lensing(dir.path / "g", "2") + common + pgd + loss);
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::string header;
  const auto g = read_gradient(dir.path / "g" / "gradient.csv", header);
  REQUIRE(g.size() == 11);
  CHECK(g[7].parameter == "pgd_alpha");
  CHECK(g[8].parameter == "pgd_k_l");
  CHECK(g[9].parameter == "pgd_k_s");
  CHECK(g[10].parameter == "pgd_mu");
  CHECK(g[10].value == -1.0);
  for (const std::size_t i : {std::size_t(7), std::size_t(9)}) {
    const double h = 1e-6 * g[i].value;
    auto at = [&](double alpha, double k_s) {
      const std::string p = format17(alpha) + ",0.1," + format17(k_s) + ",-1";
      const Result fd = run_program(exe(), small_lensing(dir.path / "fd", "2") + common +
                                               std::vector<std::string>{"--pgd-params", p} + loss);
      INFO(fd.err);
      REQUIRE(fd.status == 0);
      return loss_of(fd);
    };
    const double fd = i == 7 ? (at(0.3 + h, 1.2) - at(0.3 - h, 1.2)) / (2 * h)
                             : (at(0.3, 1.2 + h) - at(0.3, 1.2 - h)) / (2 * h);
    INFO(g[i].parameter << ": gradient " << g[i].derivative << ", finite difference " << fd);
    CHECK(g[i].derivative == Approx(fd).epsilon(1e-4));
  }
}

TEST_CASE("cli: diffpm-sim rejects bad --pgd-params naming the flag and value",
          "[cli][sim][pgd][errors]") {
  const TempDir dir;
  const std::string out = dir.path.string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1,2", "--pgd-params '1,2' must be ALPHA,KL,KS or ALPHA,KL,KS,MU (2 numbers given)"},
      {"0.5,0.1,0", "--pgd-params: k_s = 0"},
      {"0.5,-1,1", "--pgd-params: k_l = -1"},
      {"0.5,x,1", "--pgd-params '0.5,x,1': entry 2 'x'"},
  };
  for (const auto& [value, expect] : cases) {
    const Result r = run_program(exe(), {"--pgd-params", value, "--out", out});
    INFO(value << ": " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(expect) != std::string::npos);
  }
}

TEST_CASE("cli: diffpm-sim --pgd takes the fitted parameters of a calibrated resolution",
          "[cli][sim][pgd]") {
  const TempDir dir;
  // The first calibrated resolution, 64^3 particles (a few seconds in Release); --pgd must
  // give the bytes of --pgd-params with the table's numbers.
  const auto& c = diffpm::nbody::pgd_calibrations().front();
  const std::string L = format17(64 * c.spacing), M = std::to_string(64 * c.mesh_ratio);
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"--box",     L,   "--particles", "64",
                                    "--mesh",    M,   "--steps",     std::to_string(c.steps),
                                    "--threads", "2", "--out",       (dir.path / out).string()};
  };
  const Result fitted = run_program(exe(), args("fitted") + std::vector<std::string>{"--pgd"});
  INFO(fitted.err);
  REQUIRE(fitted.status == 0);
  CHECK(fitted.err.find("PGD correction at a_end: alpha " + format17(c.parameters.alpha)) !=
        std::string::npos);
  const std::string given = format17(c.parameters.alpha) + "," + format17(c.parameters.k_l) + "," +
                            format17(c.parameters.k_s) + "," + format17(c.parameters.mu);
  const Result explicit_params =
      run_program(exe(), args("given") + std::vector<std::string>{"--pgd-params", given});
  REQUIRE(explicit_params.status == 0);
  CHECK(file_bytes(dir.path / "fitted" / "power.csv") ==
        file_bytes(dir.path / "given" / "power.csv"));
  // Not calibrated: the small run of the other tests; and both flags at once.
  const Result other =
      run_program(exe(), small((dir.path / "x").string()) + std::vector<std::string>{"--pgd"});
  CHECK(other.status == 2);
  CHECK(other.err.find("--pgd: PGD calibration: no entry for 15.6") != std::string::npos);
  const Result both = run_program(
      exe(), args("both") + std::vector<std::string>{"--pgd", "--pgd-params", "0.1,0.1,1"});
  CHECK(both.status == 2);
  CHECK(both.err.find("--pgd and --pgd-params") != std::string::npos);
}
