// Source redshift distributions: normalisation, the analytic forms against their closed-form
// normalisations, tables and files, and typed errors on bad input.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "diffpm/io/redshift_distribution_file.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"
#include "support/reference.hpp"

using diffpm::io::read_source_distribution;
using diffpm::lensing::SourceDistribution;

namespace {

/// Trapezoid of the normalised n over [z_min, z_max] with `n` intervals.
double trapezoid(const SourceDistribution& d, int n) {
  const double a = d.z_min(), b = d.z_max(), h = (b - a) / n;
  double sum = 0.5 * (d(a) + d(b));
  for (int i = 1; i < n; ++i) sum += d(a + i * h);
  return sum * h;
}

/// A file in the temporary directory, removed when the test ends.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name, const std::string& text)
      : path((std::filesystem::temp_directory_path() /
              ("diffpm_test_nz_" + std::to_string(std::random_device{}()) + "_" + name))
                 .string()) {
    std::ofstream out(path);
    out << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("A fixed source redshift is a delta function", "[lensing][nz]") {
  const auto d = SourceDistribution::fixed(1.0);
  CHECK(d.is_delta());
  CHECK(d.source_redshift() == 1.0);
  CHECK(d.z_min() == 1.0);
  CHECK(d.z_max() == 1.0);
  CHECK(d.description() == "z=1");
  CHECK(SourceDistribution::fixed(0.45).description() == "z=0.45");
  CHECK_THROWS_AS(d(1.0), diffpm::InvalidArgument);
  CHECK_THROWS_AS(SourceDistribution::fixed(0.0), diffpm::InvalidArgument);
  CHECK_THROWS_AS(SourceDistribution::fixed(-1.0), diffpm::InvalidArgument);
  CHECK_THROWS_AS(SourceDistribution::fixed(NAN), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(SourceDistribution::fixed(-1.0), Catch::Contains("z = -1"));
  CHECK_THROWS_AS(SourceDistribution::gaussian(1.0, 0.1).source_redshift(),
                  diffpm::InvalidArgument);
}

TEST_CASE("Smail n(z) matches its closed-form normalisation", "[lensing][nz]") {
  // int_0^inf z^alpha exp(-(z/z0)^beta) dz = z0^(alpha+1) Gamma((alpha+1)/beta) / beta.
  // alpha = 0.5 puts a z^0.5 cusp at z = 0 (the graded panels' job).
  for (auto [alpha, beta, z0] : std::vector<std::array<double, 3>>{
           {2.0, 1.5, 0.5}, {0.5, 2.0, 0.3}, {1.0, 1.0, 0.7}, {0.0, 1.2, 0.4}}) {
    const auto d = SourceDistribution::smail(alpha, beta, z0);
    const double norm = beta / (std::pow(z0, alpha + 1.0) * std::tgamma((alpha + 1.0) / beta));
    INFO("alpha " << alpha << " beta " << beta << " z0 " << z0);
    CHECK_FALSE(d.is_delta());
    CHECK(d.z_min() == 0.0);
    for (double z : {0.01, 0.2, 0.5, 1.0, 2.0, 3.0}) {
      if (z > d.z_max()) continue;
      const double exact = norm * std::pow(z, alpha) * std::exp(-std::pow(z / z0, beta));
      // The Gauss-Legendre normalisation on graded panels: measured <= 1e-12 even with the
      // z^0.5 cusp; 1e-10 relative bounds it.
      CHECK(d(z) == Approx(exact).epsilon(1e-10));
    }
    // The cut at z_max: the tail e^-t t^(m-1) (times 1/Gamma(m)) is e^-32 = 1.3e-14 of the
    // integral (redshift_distribution.hpp).
    const double t = std::pow(d.z_max() / z0, beta);
    CHECK(std::exp(-t) * std::pow(t, (alpha + 1.0) / beta - 1.0) < 1.3e-14);
    CHECK(d(d.z_max() * 1.01) == 0.0);
    CHECK(d(-0.1) == 0.0);
  }
  CHECK(SourceDistribution::smail(2, 1.5, 0.5).description() ==
        "nz=smail(alpha=2,beta=1.5,z0=0.5)");
  CHECK_THROWS_AS(SourceDistribution::smail(-0.5, 1.0, 0.5), diffpm::InvalidArgument);
  CHECK_THROWS_AS(SourceDistribution::smail(2.0, 0.0, 0.5), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(SourceDistribution::smail(2.0, 1.5, -1.0), Catch::Contains("z0 = -1"));
}

TEST_CASE("Gaussian n(z) matches the normal density, truncated at z = 0", "[lensing][nz]") {
  for (auto [mean, sigma] :
       std::vector<std::array<double, 2>>{{1.0, 0.15}, {1.5, 0.15}, {0.1, 0.2}, {0.5, 0.05}}) {
    const auto d = SourceDistribution::gaussian(mean, sigma);
    // Probability of z >= 0 for the untruncated normal: 1 - Phi(-mean/sigma).
    const double kept = 0.5 * std::erfc(-mean / (sigma * std::sqrt(2.0)));
    INFO("mean " << mean << " sigma " << sigma);
    for (double dz : {-2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.5}) {
      const double z = mean + dz * sigma;
      if (z < 0.0) continue;
      const double exact = std::exp(-0.5 * dz * dz) / (sigma * std::sqrt(2.0 * M_PI) * kept);
      // Gauss-Legendre on sigma/2 panels integrates the Gaussian to rounding; measured 1e-15.
      CHECK(d(z) == Approx(exact).epsilon(1e-12));
    }
    CHECK(d.z_max() == Approx(mean + 9.0 * sigma));
    CHECK(d(mean + 9.5 * sigma) == 0.0);
  }
  CHECK(SourceDistribution::gaussian(1.0, 0.15).description() == "nz=gaussian(mean=1,sigma=0.15)");
  CHECK_THROWS_AS(SourceDistribution::gaussian(1.0, 0.0), diffpm::InvalidArgument);
  CHECK_THROWS_AS(SourceDistribution::gaussian(-5.0, 0.1), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(SourceDistribution::gaussian(1.0, -0.2), Catch::Contains("sigma = -0.2"));
}

TEST_CASE("Every n(z) integrates to one", "[lensing][nz]") {
  const std::string dir = std::string(DIFFPM_TEST_DATA_DIR) + "/ccl/";
  for (const auto& d :
       {SourceDistribution::smail(2.0, 1.5, 0.5), SourceDistribution::gaussian(1.0, 0.15),
        SourceDistribution::gaussian(0.1, 0.2), read_source_distribution(dir + "bin1_histo.txt"),
        SourceDistribution::histogram({0.5, 1.0, 1.5}, {0.0, 2.0, 0.0})}) {
    INFO(d.description());
    // Trapezoid with 2e5 intervals: error ~ h^2 max|n''| / 12 ~ 1e-9 for the narrowest form
    // (sigma = 0.15); exact up to the kinks for the tables.
    CHECK(trapezoid(d, 200000) == Approx(1.0).epsilon(1e-8));
  }
}

TEST_CASE("Tabulated n(z): linear interpolation, zero outside", "[lensing][nz]") {
  const auto d = SourceDistribution::histogram({0.5, 1.0, 2.0}, {1.0, 3.0, 1.0}, "nz=mine");
  // Integral of the unnormalised table: trapezoid 0.5*(1+3)/2 + 1*(3+1)/2 = 3.
  CHECK(d(0.5) == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(d(0.75) == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(d(1.5) == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(d(2.0) == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(d(0.49) == 0.0);
  CHECK(d(2.01) == 0.0);
  CHECK(d.z_min() == 0.5);
  CHECK(d.z_max() == 2.0);
  CHECK(d.description() == "nz=mine");
  CHECK(SourceDistribution::histogram({0.5, 1.0}, {1.0, 1.0}).description() == "nz=table(2 nodes)");

  // CCL's benchmark bin: 200 rows, z = 0.50375 .. 1.99625, all used.
  const auto bin =
      read_source_distribution(std::string(DIFFPM_TEST_DATA_DIR) + "/ccl/bin1_histo.txt");
  CHECK(bin.description() == "nz=bin1_histo.txt");
  CHECK(bin.z_min() == Approx(0.50375));
  CHECK(bin.z_max() == Approx(1.99625));
  CHECK(bin.panel_edges().size() == 200);
}

TEST_CASE("n(z) files and tables are checked, with the line in the message", "[lensing][nz]") {
  CHECK_THROWS_AS(read_source_distribution("/nonexistent/diffpm/nz.txt"), diffpm::IoError);

  const TempFile good("good.txt", "# z n\n0.1 1\n\n0.2 2\n0.3 0\n");
  const auto d = read_source_distribution(good.path);
  CHECK(d.z_max() == 0.3);
  CHECK(d(0.2) == Approx(2.0 / 0.25));

  const TempFile extra("extra.txt", "0.1 1\n0.2 2 7\n");
  CHECK_THROWS_AS(read_source_distribution(extra.path), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(read_source_distribution(extra.path), Catch::Contains("line 2"));
  const TempFile text("text.txt", "0.1 1\n0.2 2\n0.3 x\n");
  CHECK_THROWS_WITH(read_source_distribution(text.path), Catch::Contains("line 3"));
  const TempFile one("one.txt", "0.1 1\n0.2\n");
  CHECK_THROWS_WITH(read_source_distribution(one.path), Catch::Contains("line 2"));
  const TempFile negative("negative.txt", "# header\n0.1 1\n0.2 -2\n");
  CHECK_THROWS_AS(read_source_distribution(negative.path), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(read_source_distribution(negative.path),
                    Catch::Contains("line 3") && Catch::Contains("n = -2"));
  const TempFile order("order.txt", "0.1 1\n0.3 2\n0.2 1\n");
  CHECK_THROWS_WITH(read_source_distribution(order.path),
                    Catch::Contains("line 3") && Catch::Contains("does not increase"));
  const TempFile repeated("repeated.txt", "0.1 1\n0.1 2\n");
  CHECK_THROWS_WITH(read_source_distribution(repeated.path), Catch::Contains("line 2"));
  const TempFile zero("zero.txt", "0.1 0\n0.2 0\n0.3 0\n");
  CHECK_THROWS_AS(read_source_distribution(zero.path), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(read_source_distribution(zero.path), Catch::Contains("integrates to 0"));
  const TempFile empty("empty.txt", "# nothing\n");
  CHECK_THROWS_WITH(read_source_distribution(empty.path), Catch::Contains("at least 2"));
  const TempFile below("below.txt", "-0.1 1\n0.2 1\n");
  CHECK_THROWS_WITH(read_source_distribution(below.path),
                    Catch::Contains("line 1") && Catch::Contains("z = -0.1"));
  const TempFile nan("nan.txt", "0.1 1\n0.2 nan\n");
  CHECK_THROWS_WITH(read_source_distribution(nan.path), Catch::Contains("line 2"));

  CHECK_THROWS_AS(SourceDistribution::histogram({0.1, 0.2}, {1.0}), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(SourceDistribution::histogram({0.1, 0.2, 0.3}, {1.0, -1.0, 1.0}),
                    Catch::Contains("row 2"));
  // The overload for tables read from files names the line each row came from.
  CHECK_THROWS_WITH(
      SourceDistribution::histogram({0.1, 0.2, 0.3}, {1.0, -1.0, 1.0}, "nz=x", {4, 6, 9}, "x line"),
      Catch::Contains("x line 6: n = -1"));
  CHECK_THROWS_AS(SourceDistribution::histogram({0.1, 0.2}, {1.0, 1.0}, "nz=x", {1}, "x line"),
                  diffpm::InvalidArgument);
}
