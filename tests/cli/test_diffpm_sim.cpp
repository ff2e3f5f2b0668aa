// Tests of the diffpm-sim program, run as a separate process (support/run_program.hpp). The
// program path comes from CMake (DIFFPM_SIM_EXE); without it every test fails.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diffpm/io/fits.hpp"
#include "diffpm/io/npy.hpp"
#include "diffpm/lensing/angular_power.hpp"
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
