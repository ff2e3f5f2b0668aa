/// \file
/// \brief Quick-look PNG images of maps: viridis colours on a linear scale, oriented as ds9
/// shows the map's FITS file, written with zlib and atomically.
///
/// Orientation: PNG rows run top to bottom, so the top row is the map's last row (iy = n - 1,
/// the largest theta_y) and the bottom row is iy = 0, FITS row 1, which ds9 (and matplotlib's
/// imshow with origin='lower') draws at the bottom; columns are ix left to right.
///
/// Format (PNG specification, 3rd ed., W3C 2003 / ISO 15948): the 8-byte signature; IHDR (8-bit
/// RGB, colour type 2, no interlace); tEXt "Software" and "Comment" (the colour scale); the image
/// as one zlib stream (compress2) split into IDAT chunks of at most 1 MiB, every scanline with
/// filter type 0 (None); IEND. Each chunk ends with the CRC-32 of its type and data (zlib's
/// crc32, the polynomial of the specification's annex D).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/io/atomic_file.hpp"
#include "diffpm/maps/flat_map.hpp"

namespace diffpm::io {

/// How write_png maps values to colours.
struct PngOptions {
  /// Value drawn with the first / last colour of viridis. Default: the 0.5 and 99.5 percentiles
  /// of the finite pixels (map_percentile), which keep a few extreme pixels (peaks of a
  /// convergence map) from flattening the rest of the image.
  std::optional<double> vmin, vmax;
  /// Each map pixel becomes an upscale x upscale block (1 to 16): small maps stay visible.
  int upscale = 1;
};

/// The linear colour scale used for an image.
struct PngScale {
  double vmin = 0.0;
  double vmax = 0.0;
};

using Rgb = std::array<std::uint8_t, 3>;

/// Colour of NaN pixels: white, which viridis never reaches (its brightest is yellow).
inline constexpr Rgb png_nan_colour = {255, 255, 255};

namespace detail {
/// Every fifth entry (0, 5, ..., 255) of the 256-entry viridis table of matplotlib
/// (_cm_listed.py; N. J. Smith, S. van der Walt and E. Firing 2015, CC0). Linear interpolation
/// between these 52 points stays within 0.62 of an 8-bit level of the full table.
inline constexpr double viridis_points[52][3] = {
    {0.267004, 0.004874, 0.329415}, {0.273809, 0.031497, 0.358853}, {0.278791, 0.062145, 0.386592},
    {0.281924, 0.089666, 0.412415}, {0.283197, 0.115680, 0.436115}, {0.282623, 0.140926, 0.457517},
    {0.280255, 0.165693, 0.476498}, {0.276194, 0.190074, 0.493001}, {0.270595, 0.214069, 0.507052},
    {0.263663, 0.237631, 0.518762}, {0.255645, 0.260703, 0.528312}, {0.246811, 0.283237, 0.535941},
    {0.237441, 0.305202, 0.541921}, {0.227802, 0.326594, 0.546532}, {0.218130, 0.347432, 0.550038},
    {0.208623, 0.367752, 0.552675}, {0.199430, 0.387607, 0.554642}, {0.190631, 0.407061, 0.556089},
    {0.182256, 0.426184, 0.557120}, {0.174274, 0.445044, 0.557792}, {0.166617, 0.463708, 0.558119},
    {0.159194, 0.482237, 0.558073}, {0.151918, 0.500685, 0.557587}, {0.144759, 0.519093, 0.556572},
    {0.137770, 0.537492, 0.554906}, {0.131172, 0.555899, 0.552459}, {0.125394, 0.574318, 0.549086},
    {0.121148, 0.592739, 0.544641}, {0.119423, 0.611141, 0.538982}, {0.121380, 0.629492, 0.531973},
    {0.128087, 0.647749, 0.523491}, {0.140210, 0.665859, 0.513427}, {0.157851, 0.683765, 0.501686},
    {0.180653, 0.701402, 0.488189}, {0.208030, 0.718701, 0.472873}, {0.239374, 0.735588, 0.455688},
    {0.274149, 0.751988, 0.436601}, {0.311925, 0.767822, 0.415586}, {0.352360, 0.783011, 0.392636},
    {0.395174, 0.797475, 0.367757}, {0.440137, 0.811138, 0.340967}, {0.487026, 0.823929, 0.312321},
    {0.535621, 0.835785, 0.281908}, {0.585678, 0.846661, 0.249897}, {0.636902, 0.856542, 0.216620},
    {0.688944, 0.865448, 0.182725}, {0.741388, 0.873449, 0.149561}, {0.793760, 0.880678, 0.120005},
    {0.845561, 0.887322, 0.099702}, {0.896320, 0.893616, 0.096335}, {0.945636, 0.899815, 0.112838},
    {0.993248, 0.906157, 0.143936},
};

inline void put_be32(std::string& out, std::uint32_t v) {
  out += char((v >> 24) & 0xff);
  out += char((v >> 16) & 0xff);
  out += char((v >> 8) & 0xff);
  out += char(v & 0xff);
}

/// Appends one chunk: length, type, data, CRC-32 of type and data.
inline void put_png_chunk(std::string& out, const char type[4], const unsigned char* data,
                          std::size_t size) {
  put_be32(out, std::uint32_t(size));
  out.append(type, 4);
  out.append(reinterpret_cast<const char*>(data), size);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(type), 4);
  if (size > 0) crc = crc32(crc, data, uInt(size));  // chunks here are <= 1 MiB
  put_be32(out, std::uint32_t(crc));
}

inline void check_scale_value(const std::optional<double>& v, const char* name) {
  if (v && !std::isfinite(*v)) {
    throw InvalidArgument(std::string("write_png: ") + name + " = " + format_number(*v) +
                          " (must be finite)");
  }
}
}  // namespace detail

/// The viridis colour at t in [0, 1] (clamped; NaN gives png_nan_colour): linear interpolation
/// in the table, each channel rounded to the nearest 8-bit level.
inline Rgb viridis_rgb(double t) {
  if (std::isnan(t)) return png_nan_colour;
  t = std::clamp(t, 0.0, 1.0);
  const double s = t * 51.0;
  const int i = std::min(int(s), 50);
  const double f = s - i;
  Rgb c{};
  for (int k = 0; k < 3; ++k) {
    const double v =
        (1.0 - f) * detail::viridis_points[i][k] + f * detail::viridis_points[i + 1][k];
    c[k] = std::uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
  }
  return c;
}

/// The colour write_png gives a pixel of value v on `scale`: viridis at
/// t = (v - vmin) / (vmax - vmin), clamped to [0, 1]; +inf and -inf take the end colours, NaN is
/// png_nan_colour, and when vmax <= vmin (a constant map) every finite value takes t = 0.5.
inline Rgb png_colour(double v, const PngScale& scale) {
  if (std::isnan(v)) return png_nan_colour;
  if (std::isinf(v)) return viridis_rgb(v > 0 ? 1.0 : 0.0);
  if (!(scale.vmax > scale.vmin)) return viridis_rgb(0.5);
  return viridis_rgb((v - scale.vmin) / (scale.vmax - scale.vmin));
}

/// The p-th percentile (p in [0, 100]) of the finite pixels, interpolating linearly between
/// order statistics (NumPy's default, method='linear'); NaN if no pixel is finite.
template <class T>
double map_percentile(const maps::Map<T>& map, double p) {
  if (!(p >= 0.0 && p <= 100.0)) {
    throw InvalidArgument("map_percentile: p = " + format_number(p) + " (must be in [0, 100])");
  }
  std::vector<double> v;
  v.reserve(map.data.size());
  for (T x : map.data)
    if (std::isfinite(x)) v.push_back(double(x));
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double h = p / 100.0 * double(v.size() - 1);
  const std::size_t lo = std::size_t(std::floor(h));
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  const double below = v[lo];
  if (lo + 1 >= v.size()) return below;
  const double above = *std::min_element(v.begin() + lo + 1, v.end());
  return below + (h - double(lo)) * (above - below);
}

/// The scale write_png uses for `map` and `options` (defaults filled in, values checked).
template <class T>
PngScale png_scale(const maps::Map<T>& map, const PngOptions& options = {}) {
  detail::check_scale_value(options.vmin, "vmin");
  detail::check_scale_value(options.vmax, "vmax");
  PngScale s;
  s.vmin = options.vmin ? *options.vmin : map_percentile(map, 0.5);
  s.vmax = options.vmax ? *options.vmax : map_percentile(map, 99.5);
  if ((options.vmin || options.vmax) && !(s.vmin < s.vmax)) {
    throw InvalidArgument("write_png: vmin = " + format_number(s.vmin) +
                          " is not below vmax = " + format_number(s.vmax));
  }
  return s;
}

/// Writes `map` as an 8-bit RGB PNG at `path` (atomically, io::write_atomically) with viridis
/// colours on a linear scale (png_colour) and the orientation of the file comment. Returns the
/// scale used. Throws InvalidArgument for a map whose data does not match its geometry, a
/// non-finite vmin or vmax, vmin >= vmax when either is given, upscale outside [1, 16] or an
/// image over 2^31 bytes; IoError when the file cannot be written.
template <class T>
PngScale write_png(const std::string& path, const maps::Map<T>& map,
                   const PngOptions& options = {}) {
  static_assert(std::is_floating_point_v<T>, "write_png: floating-point maps");
  map.geometry.validate();
  const int n = map.geometry.pixels;
  if (map.data.size() != map.geometry.size()) {
    throw InvalidArgument("write_png: map holds " + std::to_string(map.data.size()) +
                          " pixels, its geometry " + std::to_string(n) + "^2");
  }
  if (options.upscale < 1 || options.upscale > 16) {
    throw InvalidArgument("write_png: upscale = " + std::to_string(options.upscale) +
                          " (must be in [1, 16])");
  }
  const std::size_t side = std::size_t(n) * std::size_t(options.upscale);
  const std::size_t row_bytes = 1 + 3 * side;  // filter byte + RGB
  if (double(row_bytes) * double(side) > 2147483648.0) {
    throw InvalidArgument("write_png: a " + std::to_string(side) + "^2 image is over 2^31 bytes");
  }
  const PngScale scale = png_scale(map, options);

  std::vector<unsigned char> raw(row_bytes * side);
  std::vector<unsigned char> row(row_bytes, 0);  // row[0] = 0: filter type None
  for (int iy = n - 1; iy >= 0; --iy) {          // top of the image = last map row
    for (int ix = 0; ix < n; ++ix) {
      const Rgb c = png_colour(double(map(ix, iy)), scale);
      for (int u = 0; u < options.upscale; ++u) {
        unsigned char* px = row.data() + 1 + 3 * (std::size_t(ix) * options.upscale + u);
        px[0] = c[0];
        px[1] = c[1];
        px[2] = c[2];
      }
    }
    const std::size_t first = std::size_t(n - 1 - iy) * options.upscale;
    for (int u = 0; u < options.upscale; ++u) {
      std::copy(row.begin(), row.end(), raw.begin() + (first + u) * row_bytes);
    }
  }

  uLongf compressed_size = compressBound(uLong(raw.size()));
  std::vector<unsigned char> compressed(compressed_size);
  const int z = compress2(compressed.data(), &compressed_size, raw.data(), uLong(raw.size()),
                          Z_DEFAULT_COMPRESSION);
  if (z != Z_OK) {
    throw IoError("write_png: zlib compress2 failed with code " + std::to_string(z) + " for '" +
                  path + "'");
  }

  std::string png("\x89PNG\r\n\x1a\n", 8);
  unsigned char ihdr[13];
  const std::uint32_t w = std::uint32_t(side);
  for (int k = 0; k < 2; ++k) {  // width, then height (the same): big-endian
    ihdr[4 * k + 0] = (w >> 24) & 0xff;
    ihdr[4 * k + 1] = (w >> 16) & 0xff;
    ihdr[4 * k + 2] = (w >> 8) & 0xff;
    ihdr[4 * k + 3] = w & 0xff;
  }
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 2;   // colour type: truecolour (RGB)
  ihdr[10] = 0;  // compression: deflate
  ihdr[11] = 0;  // filter method 0
  ihdr[12] = 0;  // no interlace
  detail::put_png_chunk(png, "IHDR", ihdr, 13);
  const std::string software = std::string("Software") + '\0' + "diffpm";
  detail::put_png_chunk(png, "tEXt", reinterpret_cast<const unsigned char*>(software.data()),
                        software.size());
  const std::string comment = std::string("Comment") + '\0' +
                              "viridis, linear, vmin = " + format_number(scale.vmin) +
                              ", vmax = " + format_number(scale.vmax);
  detail::put_png_chunk(png, "tEXt", reinterpret_cast<const unsigned char*>(comment.data()),
                        comment.size());
  constexpr std::size_t max_idat = std::size_t(1) << 20;
  for (std::size_t at = 0; at < compressed_size; at += max_idat) {
    detail::put_png_chunk(png, "IDAT", compressed.data() + at,
                          std::min<std::size_t>(max_idat, compressed_size - at));
  }
  detail::put_png_chunk(png, "IEND", nullptr, 0);

  write_atomically(path,
                   [&](std::ofstream& out) { out.write(png.data(), std::streamsize(png.size())); });
  return scale;
}

}  // namespace diffpm::io
