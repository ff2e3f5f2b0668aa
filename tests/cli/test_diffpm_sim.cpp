// Tests of the diffpm-sim program, run as a separate process (support/run_program.hpp). The
// program path comes from CMake (DIFFPM_SIM_EXE); without it every test fails.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diffpm/io/npy.hpp"
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
      {{"--steps", "0", "--out", out}, "--steps '0'"},
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
