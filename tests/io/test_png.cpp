// Quick-look PNG maps: file structure (signature, chunk CRCs), decompressed pixels equal to the
// colour-mapped map values in ds9's orientation, viridis, percentiles, NaN handling, errors.
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "diffpm/io/png.hpp"

namespace fs = std::filesystem;
using diffpm::io::PngOptions;
using diffpm::io::PngScale;
using diffpm::io::Rgb;
using diffpm::maps::Map;
using diffpm::maps::MapGeometry;

namespace {
std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("diffpm_test_png_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

/// CRC-32 of the PNG specification (annex D), bit by bit: an implementation independent of the
/// zlib one the writer uses.
std::uint32_t crc32_reference(const unsigned char* data, std::size_t size) {
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) {
    c ^= data[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

struct Png {
  std::uint32_t width = 0, height = 0;
  std::vector<std::string> chunk_types;
  std::vector<std::string> texts;     // tEXt payloads
  std::vector<unsigned char> pixels;  // decompressed scanlines, filter bytes included
};

/// Parses a PNG the way a decoder must: signature, chunks with their CRCs checked, IHDR first,
/// IEND last, IDAT data concatenated and inflated.
Png read_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  const std::vector<unsigned char> file((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
  const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  REQUIRE(file.size() > 8);
  REQUIRE(std::equal(signature, signature + 8, file.begin()));
  Png png;
  std::vector<unsigned char> idat;
  std::size_t at = 8;
  while (at < file.size()) {
    REQUIRE(at + 12 <= file.size());
    const std::uint32_t length = be32(&file[at]);
    REQUIRE(at + 12 + length <= file.size());
    const std::string type(reinterpret_cast<const char*>(&file[at + 4]), 4);
    const unsigned char* data = &file[at + 8];
    INFO("chunk " << type);
    CHECK(be32(data + length) == crc32_reference(&file[at + 4], 4 + length));
    png.chunk_types.push_back(type);
    if (type == "IHDR") {
      REQUIRE(length == 13);
      png.width = be32(data);
      png.height = be32(data + 4);
      CHECK(int(data[8]) == 8);   // bit depth
      CHECK(int(data[9]) == 2);   // RGB
      CHECK(int(data[10]) == 0);  // deflate
      CHECK(int(data[11]) == 0);  // filter method
      CHECK(int(data[12]) == 0);  // no interlace
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + length);
    } else if (type == "tEXt") {
      png.texts.emplace_back(reinterpret_cast<const char*>(data), length);
    }
    at += 12 + length;
  }
  REQUIRE(!png.chunk_types.empty());
  CHECK(png.chunk_types.front() == "IHDR");
  CHECK(png.chunk_types.back() == "IEND");
  png.pixels.resize(std::size_t(png.height) * (1 + 3 * std::size_t(png.width)));
  uLongf size = uLongf(png.pixels.size());
  REQUIRE(uncompress(png.pixels.data(), &size, idat.data(), uLong(idat.size())) == Z_OK);
  CHECK(size == png.pixels.size());
  return png;
}

template <class T>
Map<T> ramp_map(int n) {
  Map<T> m(MapGeometry(n, 2.0));
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) m(ix, iy) = T(std::sin(0.9 * ix) + 0.3 * iy);
  return m;
}

/// Checks every decompressed scanline against png_colour of the map pixel it shows: PNG row r
/// shows map row iy = n - 1 - r / upscale (FITS row 1, iy = 0, at the bottom as in ds9).
template <class T>
void check_pixels(const Png& png, const Map<T>& map, const PngScale& scale, int upscale) {
  const int n = map.geometry.pixels;
  REQUIRE(png.width == std::uint32_t(n * upscale));
  REQUIRE(png.height == std::uint32_t(n * upscale));
  const std::size_t row_bytes = 1 + 3 * std::size_t(png.width);
  int mismatches = 0;
  for (std::uint32_t r = 0; r < png.height; ++r) {
    const unsigned char* row = &png.pixels[r * row_bytes];
    if (row[0] != 0) ++mismatches;  // filter type None
    for (std::uint32_t c = 0; c < png.width; ++c) {
      const int ix = int(c) / upscale, iy = n - 1 - int(r) / upscale;
      const Rgb want = diffpm::io::png_colour(double(map(ix, iy)), scale);
      for (int k = 0; k < 3; ++k) mismatches += row[1 + 3 * c + k] != want[k];
    }
  }
  CHECK(mismatches == 0);
}
}  // namespace

TEST_CASE("viridis_rgb follows the published viridis table", "[io][png]") {
  // End points: matplotlib's viridis(0) = #440154 and viridis(1) = #FDE725.
  CHECK(diffpm::io::viridis_rgb(0.0) == Rgb{0x44, 0x01, 0x54});
  CHECK(diffpm::io::viridis_rgb(1.0) == Rgb{0xfd, 0xe7, 0x25});
  CHECK(diffpm::io::viridis_rgb(-3.0) == diffpm::io::viridis_rgb(0.0));
  CHECK(diffpm::io::viridis_rgb(7.0) == diffpm::io::viridis_rgb(1.0));
  // Mid point: the 256-entry table gives #21918C at entry 128 (t = 0.502); the 52-point table
  // interpolated at 0.5 must be within one 8-bit level per channel (the table is accurate to
  // 0.62 levels, and t differs by 1/512).
  const Rgb mid = diffpm::io::viridis_rgb(0.5);
  CHECK(std::abs(int(mid[0]) - 0x21) <= 1);
  CHECK(std::abs(int(mid[1]) - 0x91) <= 1);
  CHECK(std::abs(int(mid[2]) - 0x8c) <= 1);
  // Perceptually ordered: the green channel (close to lightness for viridis) only grows.
  int last_green = -1;
  for (int i = 0; i <= 1000; ++i) {
    const int g = diffpm::io::viridis_rgb(i / 1000.0)[1];
    CHECK(g >= last_green);
    last_green = g;
  }
  CHECK(diffpm::io::viridis_rgb(std::nan("")) == diffpm::io::png_nan_colour);
}

TEST_CASE("map_percentile matches NumPy's linear interpolation and skips NaN", "[io][png]") {
  Map<double> m(MapGeometry(4, 1.0));
  for (int i = 0; i < 10; ++i) m.data[i] = 10 - i;  // 1..10 in some order
  for (int i = 10; i < 16; ++i) m.data[i] = std::numeric_limits<double>::quiet_NaN();
  // numpy.percentile(np.arange(1, 11), [0, 0.5, 50, 99.5, 100]) = 1, 1.045, 5.5, 9.955, 10.
  CHECK(diffpm::io::map_percentile(m, 0.0) == 1.0);
  CHECK(diffpm::io::map_percentile(m, 0.5) == Approx(1.045).epsilon(1e-14));
  CHECK(diffpm::io::map_percentile(m, 50.0) == Approx(5.5).epsilon(1e-14));
  CHECK(diffpm::io::map_percentile(m, 99.5) == Approx(9.955).epsilon(1e-14));
  CHECK(diffpm::io::map_percentile(m, 100.0) == 10.0);
  CHECK_THROWS_AS(diffpm::io::map_percentile(m, 101.0), diffpm::InvalidArgument);
  Map<float> empty(MapGeometry(2, 1.0));
  for (float& v : empty.data) v = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(diffpm::io::map_percentile(empty, 50.0)));
}

TEMPLATE_TEST_CASE("PNG files decode to the colour-mapped map in ds9's orientation", "[io][png]",
                   float, double) {
  const std::string path = temp_path("map.png");
  for (int upscale : {1, 3}) {
    Map<TestType> map = ramp_map<TestType>(37);  // odd: no accidental symmetry
    map(5, 7) = std::numeric_limits<TestType>::quiet_NaN();
    map(6, 7) = std::numeric_limits<TestType>::infinity();
    PngOptions options;
    options.upscale = upscale;
    const PngScale scale = diffpm::io::write_png(path, map, options);
    CHECK_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
    // Default scale: the 0.5 and 99.5 percentiles of the finite pixels.
    CHECK(scale.vmin == diffpm::io::map_percentile(map, 0.5));
    CHECK(scale.vmax == diffpm::io::map_percentile(map, 99.5));
    const Png png = read_png(path);
    check_pixels(png, map, scale, upscale);
    REQUIRE(png.texts.size() == 2);
    CHECK(png.texts[1].find("vmin = " + diffpm::format_number(scale.vmin)) != std::string::npos);
    // The NaN pixel is white, the +inf one the top colour.
    const std::size_t row_bytes = 1 + 3 * std::size_t(png.width);
    const std::size_t r = std::size_t(37 - 1 - 7) * upscale, c5 = 5 * upscale, c6 = 6 * upscale;
    CHECK(png.pixels[r * row_bytes + 1 + 3 * c5] == 255);
    CHECK(png.pixels[r * row_bytes + 1 + 3 * c6] == 0xfd);
  }

  // Orientation: map row iy = 0 (FITS row 1) at the maximum, the rest at the minimum, with an
  // explicit scale. The bottom PNG row is yellow (the top of viridis), the top row purple.
  Map<TestType> edge(MapGeometry(8, 1.0));
  for (int ix = 0; ix < 8; ++ix) edge(ix, 0) = TestType(1);
  PngOptions fixed;
  fixed.vmin = 0.0;
  fixed.vmax = 1.0;
  const PngScale s = diffpm::io::write_png(path, edge, fixed);
  CHECK(s.vmin == 0.0);
  CHECK(s.vmax == 1.0);
  const Png png = read_png(path);
  check_pixels(png, edge, s, 1);
  const std::size_t row_bytes = 1 + 3 * 8;
  CHECK(png.pixels[7 * row_bytes + 1] == 0xfd);  // bottom row, red channel of #FDE725
  CHECK(png.pixels[0 * row_bytes + 1] == 0x44);  // top row, red channel of #440154
  std::remove(path.c_str());
}

TEST_CASE("A constant map is drawn in the middle colour", "[io][png]") {
  const std::string path = temp_path("constant.png");
  Map<double> map(MapGeometry(5, 1.0));
  for (double& v : map.data) v = 0.25;
  const PngScale s = diffpm::io::write_png(path, map);
  CHECK(s.vmin == s.vmax);
  const Png png = read_png(path);
  check_pixels(png, map, s, 1);
  const Rgb mid = diffpm::io::viridis_rgb(0.5);
  CHECK(png.pixels[1] == mid[0]);
  std::remove(path.c_str());
}

TEST_CASE("write_png rejects bad options with typed errors", "[io][png][errors]") {
  using Catch::Matchers::Contains;
  const std::string path = temp_path("bad.png");
  const Map<float> map = ramp_map<float>(8);
  PngOptions o;
  o.vmin = 1.0;
  o.vmax = 1.0;
  CHECK_THROWS_WITH(diffpm::io::write_png(path, map, o),
                    Contains("vmin = 1 is not below vmax = 1"));
  o.vmin = std::nan("");
  CHECK_THROWS_WITH(diffpm::io::write_png(path, map, o), Contains("vmin = nan"));
  PngOptions u;
  u.upscale = 0;
  CHECK_THROWS_WITH(diffpm::io::write_png(path, map, u), Contains("upscale = 0"));
  CHECK_FALSE(fs::exists(path));
  const std::string nowhere = temp_path("no-such-dir") + "/map.png";
  CHECK_THROWS_AS(diffpm::io::write_png(nowhere, map), diffpm::IoError);
}
