// .npy writing and reading, atomic replacement of output files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "diffpm/io/npy.hpp"

namespace fs = std::filesystem;

namespace {
std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("diffpm_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}
}  // namespace

TEMPLATE_TEST_CASE("npy files round-trip with their shape", "[io][npy]", float, double) {
  const std::string path = temp_path("a.npy");
  std::vector<TestType> v(2 * 3 * 4);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = TestType(0.5) * TestType(i) - TestType(3);
  diffpm::io::write_npy(path, v.data(), {2, 3, 4});
  // NumPy's format: the data starts at a multiple of 64 bytes after a 10-byte preamble.
  CHECK(fs::file_size(path) % 64 == (v.size() * sizeof(TestType)) % 64);
  std::vector<std::size_t> shape;
  const auto back = diffpm::io::read_npy<TestType>(path, shape);
  CHECK(shape == std::vector<std::size_t>{2, 3, 4});
  CHECK(back == v);
  diffpm::io::write_npy(path, v.data(), {24});
  diffpm::io::read_npy<double>(path, shape);
  CHECK(shape == std::vector<std::size_t>{24});
  std::ifstream in(path, std::ios::binary);
  std::string head(128, '\0');
  in.read(head.data(), 128);
  CHECK(head.find("'shape': (24,)") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("A failed write leaves neither a partial file nor a temporary one", "[io][npy][errors]") {
  const std::string path = temp_path("b.txt");
  {
    std::ofstream old(path);
    old << "previous result\n";
  }
  CHECK_THROWS_AS(diffpm::io::write_atomically(path,
                                               [](std::ofstream& out) {
                                                 out << "half";
                                                 throw diffpm::IoError("simulated failure");
                                               }),
                  diffpm::IoError);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  CHECK(line == "previous result");
  CHECK_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
  std::remove(path.c_str());
  CHECK_THROWS_AS(diffpm::io::write_npy<double>("/nonexistent-dir/x.npy", nullptr, {0}),
                  diffpm::IoError);
  std::vector<std::size_t> shape;
  CHECK_THROWS_AS(diffpm::io::read_npy<double>("/nonexistent-dir/x.npy", shape), diffpm::IoError);
}
