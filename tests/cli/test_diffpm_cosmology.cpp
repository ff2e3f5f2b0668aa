// Tests of the diffpm-cosmology command-line program, run as a separate process the way a user
// or a script runs it: popen() for stdout, stderr redirected to a file, exit status from pclose.
//
// The program path comes from CMake (DIFFPM_COSMOLOGY_EXE). Without it every test fails: a
// silently skipped CLI test would look like a passing one.
#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "support/run_program.hpp"

namespace {

namespace dc = diffpm::cosmology;
namespace fs = std::filesystem;

std::string exe() {
#ifdef DIFFPM_COSMOLOGY_EXE
  return DIFFPM_COSMOLOGY_EXE;
#else
  FAIL(
      "DIFFPM_COSMOLOGY_EXE is not defined: the CLI tests need the diffpm-cosmology program "
      "(configure with DIFFPM_BUILD_EXAMPLES=ON)");
  return "";
#endif
}

using namespace diffpm::test;

Result run(const std::vector<std::string>& args) { return run_program(exe(), args); }

/// The program's CSV output: header line and numeric rows.
struct Table {
  std::string header_line;
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  double at(std::size_t row, const std::string& column) const {
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (header[c] == column) return rows.at(row).at(c);
    }
    FAIL("no column '" << column << "' in header " << header_line);
    return 0.0;
  }
};

/// Runs the program, requires success and well-formed CSV, and parses it.
Table run_table(const std::vector<std::string>& args) {
  const Result r = run(args);
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  REQUIRE(r.err.empty());
  REQUIRE(!r.out.empty());
  REQUIRE(r.out.back() == '\n');
  std::vector<std::string> lines = split(r.out.substr(0, r.out.size() - 1), '\n');
  Table t;
  t.header_line = lines.at(0);
  t.header = split(t.header_line, ',');
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::vector<double> row;
    for (const auto& f : split(lines[i], ',')) row.push_back(parse_double(f));
    REQUIRE(row.size() == t.header.size());
    t.rows.push_back(row);
  }
  return t;
}

bool close_rel(double x, double ref, double rtol) {
  return std::abs(x - ref) <= rtol * std::abs(ref);
}

// The parameter names in derivative order, written out here rather than taken from the library
// so that a change in either shows up as a failure.
const std::vector<std::string> kParams = {"Omega_c", "Omega_b", "h",  "n_s",
                                          "sigma8",  "Omega_k", "w0", "wa"};
const std::vector<std::string> kBackground = {"E", "chi", "D1", "f1", "D2", "f2"};

std::string expected_header(const std::string& base, const std::vector<std::string>& quantities) {
  std::string h = base;
  for (const auto& q : quantities) {
    for (const auto& x : kParams) h += ",d" + q + "/d" + x;
  }
  return h;
}

/// A two-column P(k) file from the program's own eh spectrum at z = 0, 100 points per decade.
fs::path write_pk_file(const fs::path& dir) {
  std::string ks;
  for (int i = 0; i <= 700; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", std::pow(10.0, -5.0 + i / 100.0));
    ks += (i ? "," : "") + std::string(buf);
  }
  const Table t = run_table({"--z", "0", "--k", ks});
  REQUIRE(t.rows.size() == 701);
  const fs::path path = dir / "pk.txt";
  std::ofstream f(path);
  f << "# k [h/Mpc]  P [(Mpc/h)^3]\n";
  char buf[64];
  for (const auto& row : t.rows) {
    std::snprintf(buf, sizeof buf, "%.17g %.17g\n", row[1], row[2]);
    f << buf;
  }
  REQUIRE(f.good());
  return path;
}

}  // namespace

TEST_CASE("cli: diffpm-cosmology headers", "[cli]") {
  CHECK(run_table({"--z", "1"}).header_line == "z,a,E,chi,D1,f1,D2,f2");
  CHECK(run_table({"--z", "1", "--k", "0.1"}).header_line == "z,k,P_lin");

  const Table bd = run_table({"--z", "1", "--derivatives"});
  CHECK(bd.header.size() == 8 + 6 * 8);
  CHECK(bd.header_line == expected_header("z,a,E,chi,D1,f1,D2,f2", kBackground));

  const Table pd = run_table({"--z", "1", "--k", "0.1", "--derivatives"});
  CHECK(pd.header.size() == 3 + 8);
  CHECK(pd.header_line == expected_header("z,k,P_lin", {"P_lin"}));
}

TEST_CASE("cli: diffpm-cosmology values equal the library's", "[cli]") {
  const dc::Cosmology<double> c(dc::Parameters<double>{});
  // 17 significant digits round-trip a double exactly; 1e-15 leaves room for nothing else.
  const double rtol = 1e-15;

  const Table t = run_table({"--z", "0,1,3"});
  REQUIRE(t.rows.size() == 3);
  const double zs[] = {0.0, 1.0, 3.0};
  for (std::size_t i = 0; i < 3; ++i) {
    const double a = 1.0 / (1.0 + zs[i]);
    CHECK(t.at(i, "z") == zs[i]);
    CHECK(t.at(i, "a") == a);
    if (zs[i] == 0.0) continue;  // z = 0 is checked against the exact values below
    CHECK(close_rel(t.at(i, "E"), c.background().E(a), rtol));
    CHECK(close_rel(t.at(i, "chi"), c.background().comoving_distance(a), rtol));
    CHECK(close_rel(t.at(i, "D1"), c.growth().growth_factor(a), rtol));
    CHECK(close_rel(t.at(i, "f1"), c.growth().growth_rate(a), rtol));
    CHECK(close_rel(t.at(i, "D2"), c.growth().growth_factor_2(a), rtol));
    CHECK(close_rel(t.at(i, "f2"), c.growth().growth_rate_2(a), rtol));
  }
  // Today: D1 is normalised to 1 and chi vanishes by definition.
  CHECK(t.at(0, "D1") == 1.0);
  CHECK(t.at(0, "chi") == 0.0);
  CHECK(std::abs(t.at(0, "E") - 1.0) <= 1e-15);
  CHECK(close_rel(t.at(0, "f1"), c.growth().growth_rate(1.0), 1e-12));

  // --derivatives leaves the value columns untouched.
  const Table td = run_table({"--z", "0,1,3", "--derivatives"});
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t col = 0; col < 8; ++col) CHECK(td.rows[i][col] == t.rows[i][col]);
  }
  // ... and its derivatives are the library's dual-number ones.
  const dc::Cosmology<dc::ParameterDual> cd(dc::seed_parameters(dc::Parameters<double>{}));
  const auto chi1 = cd.background().comoving_distance(dc::ParameterDual(0.5));
  // (The program prints the double build's values; the dual build's agree to rounding.)
  CHECK(close_rel(diffpm::value_of(chi1), td.at(1, "chi"), 1e-15));
  for (int x = 0; x < 8; ++x) {
    const double ref = diffpm::derivative(chi1, x);
    CHECK(std::abs(td.at(1, "dchi/d" + kParams[x]) - ref) <= 1e-15 * std::abs(ref));
  }

  // P_lin: one row per (z, k), z in the outer loop, both in the order given.
  const std::vector<double> ks = {0.1, 0.01, 1.0};
  const Table p = run_table({"--z", "1,0", "--k", "0.1,0.01,1"});
  REQUIRE(p.rows.size() == 2 * 3);
  for (std::size_t iz = 0; iz < 2; ++iz) {
    const double z = iz == 0 ? 1.0 : 0.0;
    for (std::size_t ik = 0; ik < 3; ++ik) {
      const std::size_t r = iz * 3 + ik;
      CHECK(p.at(r, "z") == z);
      CHECK(p.at(r, "k") == ks[ik]);
      CHECK(close_rel(p.at(r, "P_lin"), c.linear_power(ks[ik], 1.0 / (1.0 + z)), rtol));
    }
  }
}

TEST_CASE("cli: diffpm-cosmology parameter flags reach the library", "[cli]") {
  // Every value differs from the default, so a flag wired to the wrong field fails.
  dc::Parameters<double> q;
  q.Omega_c = 0.25;
  q.Omega_b = 0.045;
  q.h = 0.7;
  q.n_s = 0.95;
  q.sigma8 = 0.8;
  q.Omega_k = 0.01;
  q.w0 = -0.9;
  q.wa = 0.1;
  q.T_CMB = 2.7;
  q.N_eff = 3.0;
  const std::vector<std::string> flags = {"--Omega_c", "0.25",    "--Omega_b", "0.045",    "--h",
                                          "0.7",       "--n_s",   "0.95",      "--sigma8", "0.8",
                                          "--Omega_k", "0.01",    "--w0",      "-0.9",     "--wa",
                                          "0.1",       "--T_CMB", "2.7",       "--N_eff",  "3.0"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = flags;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const double rtol = 1e-15;
  const dc::Cosmology<double> c(q);
  const Table t = run_table(with({"--z", "1,1000"}));
  CHECK(close_rel(t.at(0, "chi"), c.background().comoving_distance(0.5), rtol));
  CHECK(close_rel(t.at(0, "D1"), c.growth().growth_factor(0.5), rtol));
  CHECK(close_rel(t.at(1, "E"), c.background().E(1.0 / 1001.0), rtol));
  const Table p = run_table(with({"--z", "0.5", "--k", "0.1"}));
  CHECK(close_rel(p.at(0, "P_lin"), c.linear_power(0.1, 1.0 / 1.5), rtol));

  for (const std::string name : {"bbks", "eh_nowiggle", "eh"}) {
    dc::CosmologyOptions o;
    o.transfer = dc::transfer_from_name(name);
    const dc::Cosmology<double> ct(q, o);
    const Table pt = run_table(with({"--z", "0.5", "--k", "0.1", "--transfer", name}));
    INFO("transfer " << name);
    CHECK(close_rel(pt.at(0, "P_lin"), ct.linear_power(0.1, 1.0 / 1.5), rtol));
  }
}

TEST_CASE("cli: diffpm-cosmology --no-radiation", "[cli]") {
  const Table on = run_table({"--z", "0,0.5,1000", "--k", "0.1"});
  const Table off = run_table({"--z", "0,0.5,1000", "--k", "0.1", "--no-radiation"});
  const Table bon = run_table({"--z", "0,0.5,1000"});
  const Table boff = run_table({"--z", "0,0.5,1000", "--no-radiation"});

  // At z = 1000, Omega_r (1+z) / Omega_m ~ 0.3: radiation changes E by ~15%.
  CHECK(boff.at(2, "E") < 0.95 * bon.at(2, "E"));
  dc::Parameters<double> p;
  p.radiation = false;
  const dc::Cosmology<double> c(p);
  CHECK(close_rel(boff.at(2, "E"), c.background().E(1.0 / 1001.0), 1e-15));
  // Late times barely notice (dark energy absorbs today's Omega_r ~ 9e-5), but they do.
  CHECK(bon.at(1, "E") != boff.at(1, "E"));
  CHECK(close_rel(boff.at(1, "E"), bon.at(1, "E"), 1e-3));
  // The transfer function depends on T_CMB, not on the background's radiation switch, and the
  // spectrum is normalised today: P_lin at z = 0 is the same either way.
  CHECK(close_rel(off.at(0, "P_lin"), on.at(0, "P_lin"), 1e-15));
}

TEST_CASE("cli: diffpm-cosmology derivatives agree with finite differences", "[cli]") {
  // Central differences of the program's own output, one parameter at a time. Steps: 1e-5
  // relative for the parameters that are positive, 1e-5 absolute around Omega_k = 0, w0 = -1,
  // wa = 0. The program's tables use a parameter-independent ln a grid and fixed quadrature
  // nodes, so its output is a smooth function of the parameters and the only FD errors are
  //   truncation  ~ eps^2 |Q'''| / 6        ~ 1e-10 relative to dQ/dX, and
  //   cancellation ~ (noise of Q) / eps      ~ 1e-14 |Q| / 1e-5 = 1e-9 |Q| / scale,
  // where the noise is the rounding accumulated in Q (the printed 17 digits add none). The
  // tolerance 1e-8 (|dQ/dX| + |Q| / scale) sits ten times above both estimates (the largest
  // error measured with the default parameters is 2e-10 of that scale); a wrong, swapped or
  // missing derivative is off by O(1) of it.
  const std::vector<double> x0 = {0.26067, 0.048975, 0.6766, 0.9665, 0.8102, 0.0, -1.0, 0.0};
  const std::vector<double> scale = {0.26067, 0.048975, 0.6766, 0.9665, 0.8102, 1.0, 1.0, 1.0};
  {
    // The defaults this test steps around are the library's (a changed default must be noticed
    // here, not give steps around the wrong point).
    const dc::Parameters<double> d;
    for (int x = 0; x < 8; ++x) REQUIRE(d[dc::Parameter(x)] == x0[x]);
  }

  struct Mode {
    std::vector<std::string> args;
    std::vector<std::string> quantities;
  };
  const std::vector<Mode> modes = {
      {{"--z", "0,0.5,1,3"}, kBackground},
      {{"--z", "0,3", "--k", "0.01,0.1,1"}, {"P_lin"}},
  };
  for (const auto& mode : modes) {
    std::vector<std::string> args = mode.args;
    args.push_back("--derivatives");
    const Table ad = run_table(args);
    for (int x = 0; x < 8; ++x) {
      const double eps = 1e-5 * scale[x];
      auto shifted = [&](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        std::vector<std::string> a = mode.args;
        a.push_back("--" + kParams[x]);
        a.push_back(buf);
        return run_table(a);
      };
      const double xp = x0[x] + eps, xm = x0[x] - eps;
      const Table plus = shifted(xp), minus = shifted(xm);
      REQUIRE(plus.rows.size() == ad.rows.size());
      REQUIRE(minus.rows.size() == ad.rows.size());
      for (std::size_t r = 0; r < ad.rows.size(); ++r) {
        for (const auto& q : mode.quantities) {
          const double fd = (plus.at(r, q) - minus.at(r, q)) / (xp - xm);
          const double exact = ad.at(r, "d" + q + "/d" + kParams[x]);
          const double tol = 1e-8 * (std::abs(exact) + std::abs(ad.at(r, q)) / scale[x]);
          INFO("d" << q << "/d" << kParams[x] << " row " << r << " (z = " << ad.at(r, "z")
                   << "): exact " << exact << ", finite difference " << fd);
          CHECK(std::abs(fd - exact) <= tol);
        }
      }
    }
  }
}

TEST_CASE("cli: diffpm-cosmology --pk-file", "[cli]") {
  const TempDir dir;
  const fs::path pk = write_pk_file(dir.path);
  // Off the table's nodes, the log-log spline of a smooth table (with BAO at ~10 points per
  // period) reproduces the spectrum to ~1e-5; the sigma8 rescaling changes it by ~1e-8.
  const std::vector<std::string> args = {"--z", "0,2", "--k", "0.0123,0.0567,0.0891,0.234"};
  const Table ref = run_table(args);
  std::vector<std::string> with_file = args;
  with_file.push_back("--pk-file");
  with_file.push_back(pk.string());
  const Table t = run_table(with_file);
  REQUIRE(t.rows.size() == ref.rows.size());
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    INFO("z = " << t.at(r, "z") << ", k = " << t.at(r, "k"));
    CHECK(t.at(r, "k") == ref.at(r, "k"));
    CHECK(close_rel(t.at(r, "P_lin"), ref.at(r, "P_lin"), 1e-4));
  }
  // Its sigma8 still counts: doubling it quadruples P.
  with_file.push_back("--sigma8");
  with_file.push_back("1.6204");
  const Table t2 = run_table(with_file);
  CHECK(close_rel(t2.at(0, "P_lin"), 4.0 * t.at(0, "P_lin"), 1e-12));
}

TEST_CASE("cli: diffpm-cosmology --help", "[cli]") {
  for (const std::string flag : {"--help", "-h"}) {
    const Result r = run({flag});
    INFO(flag << " stderr: " << r.err);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    for (const char* f : {"--Omega_c", "--Omega_b", "--h ", "--n_s", "--sigma8", "--Omega_k",
                          "--w0", "--wa", "--T_CMB", "--N_eff", "--no-radiation", "--z", "--k",
                          "--transfer", "--pk-file", "--derivatives", "--help", "-h"}) {
      INFO("flag " << f);
      CHECK(r.out.find(f) != std::string::npos);
    }
    // Defaults and units are shown.
    for (const char* s : {"0.6766", "0.26067", "2.7255", "3.046", "h/Mpc", "(Mpc/h)^3", "eh"}) {
      INFO("text " << s);
      CHECK(r.out.find(s) != std::string::npos);
    }
  }
}

TEST_CASE("cli: diffpm-cosmology rejects bad input", "[cli]") {
  const TempDir dir;
  const std::string missing = (dir.path / "no-such-pk.txt").string();
  const std::string pk = write_pk_file(dir.path).string();
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::vector<Case> cases = {
      {{"--z", "1", "--bogus", "3"}, {"--bogus"}},
      {{"stray"}, {"stray"}},
      {{"--z", "1", "--h"}, {"--h"}},
      {{"--h", "abc", "--z", "1"}, {"--h", "abc"}},
      {{"--h", "0.7x", "--z", "1"}, {"--h", "0.7x"}},
      {{"--h", "", "--z", "1"}, {"--h"}},
      {{"--z", "1,,2"}, {"--z", "1,,2"}},
      {{"--z", "1,"}, {"--z", "1,"}},
      {{"--z", "1,abc"}, {"--z", "abc"}},
      {{"--h", "nan", "--z", "1"}, {"--h", "nan"}},
      {{"--sigma8", "inf", "--z", "1"}, {"--sigma8", "inf"}},
      {{"--w0", "1e999", "--z", "1"}, {"--w0", "1e999"}},
      {{"--z", "-1"}, {"--z", "-1"}},
      {{"--z", "0.5,-0.1"}, {"--z", "-0.1"}},
      {{"--z", "1e7"}, {"--z", "1e7"}},
      {{"--h", "-0.5", "--z", "1"}, {"invalid cosmology", "h = -0.5"}},
      {{"--Omega_c", "-0.1", "--z", "1"}, {"invalid cosmology", "Omega_c = -0.1"}},
      {{"--w0", "0.5", "--z", "1"}, {"invalid cosmology", "w0 = 0.5"}},
      {{"--N_eff", "-1", "--z", "1"}, {"N_eff = -1"}},
      {{}, {"--z"}},
      {{"--k", "0.1"}, {"--z"}},
      {{"--z", "1", "--k", "0.1,0"}, {"--k", "0.1,0"}},
      {{"--z", "1", "--k", "-1"}, {"--k", "-1"}},
      {{"--z", "1", "--transfer", "foo"}, {"--transfer", "foo"}},
      {{"--z", "1", "--transfer"}, {"--transfer"}},
      {{"--z", "1", "--pk-file", missing}, {"--pk-file", missing}},
      {{"--z", "1", "--pk-file", pk, "--transfer", "bbks"}, {"--pk-file", "--transfer"}},
  };
  const std::string prefix = "diffpm-cosmology: error: ";
  for (const auto& c : cases) {
    std::string line;
    for (const auto& a : c.args) line += " [" + a + "]";
    const Result r = run(c.args);
    INFO("args:" << line << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    // One line, with the program's prefix.
    CHECK(r.err.compare(0, prefix.size(), prefix) == 0);
    CHECK(r.err.find('\n') == r.err.size() - 1);
    for (const auto& e : c.expect) {
      INFO("expected in message: " << e);
      CHECK(r.err.find(e) != std::string::npos);
    }
  }
}
