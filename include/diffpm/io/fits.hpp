/// \file
/// \brief FITS images of flat-sky maps (cfitsio): atomic writing with a celestial TAN WCS and
/// typed header keys, and reading them back.
///
/// Orientation (docs/conventions.md, "Flat-sky maps"). Pixel (ix, iy) of a maps::Map, stored
/// at iy * n + ix, is FITS pixel (ix + 1, iy + 1): NAXIS1 runs along theta_x, NAXIS2 along
/// theta_y, and FITS row 1 (iy = 0, the most negative theta_y) is what ds9 shows at the bottom.
/// The WCS (Greisen & Calabretta 2002, A&A 395, 1061; Calabretta & Greisen 2002, A&A 395, 1077)
/// is
///   CTYPE1 = 'RA---TAN', CTYPE2 = 'DEC--TAN', CRVAL = (0, 0) deg, CRPIX = ((n + 1) / 2) on both
///   axes (the map centre, between pixels for even n), CDELT1 = CDELT2 = +pixel side in deg,
///   CUNIT = 'deg', LONPOLE = 180, RADESYS = 'ICRS',
/// so the intermediate world coordinates of a pixel centre are exactly (theta_x, theta_y) =
/// (MapGeometry::angle(ix), angle(iy)) in degrees: theta_x is the RA offset (east), theta_y the
/// Dec offset (north). TAN reads them as gnomonic tangent-plane coordinates, the flat-sky
/// transverse position over the distance, so the direction of pixel centre (ix, iy) is
///   RA = atan(theta_x),  Dec = atan(theta_y / sqrt(1 + theta_x^2))
/// exactly (tests/io/check_fits_astropy.py checks this with astropy.wcs). CDELT1 is positive,
/// unlike the usual east-left display convention, because (east, north, line of sight) is
/// right-handed, like (theta_x, theta_y, line of sight) when theta_x and theta_y follow the y and
/// z axes of a right-handed box around its x axis: with CDELT1 < 0 the written sky would be the
/// mirror image of the simulated one. ds9 therefore shows east to the right (its compass says
/// so); its Zoom > Align (to the WCS) shows the conventional east-left view.
///
/// Writing is atomic (io/atomic_file.hpp: a temporary file beside the target, then rename).
/// cfitsio's calls are serialised by one lock, because its error-message stack is global.
#pragma once

#include <fitsio.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/maps/flat_map.hpp"

namespace diffpm::io {

/// One header keyword with a string, floating-point, integer or logical value, and a comment.
/// Names follow the FITS standard (4.0, sec. 4.1.2.1): 1 to 8 characters of A-Z, 0-9, '-', '_'.
/// Strings and comments are printable ASCII; strings longer than a card are written with the
/// CONTINUE long-string convention (astropy and cfitsio read them back whole); a comment longer
/// than the rest of its card is truncated by cfitsio. Doubles are written with 17 significant
/// digits and read back bit for bit.
struct FitsKey {
  using Value = std::variant<std::string, double, std::int64_t, bool>;
  std::string name;
  Value value;
  std::string comment;

  FitsKey() = default;
  FitsKey(std::string key, std::string v, std::string c = {})
      : name(std::move(key)), value(std::move(v)), comment(std::move(c)) {}
  FitsKey(std::string key, const char* v, std::string c = {})
      : name(std::move(key)), value(std::string(v)), comment(std::move(c)) {}
  FitsKey(std::string key, double v, std::string c = {})
      : name(std::move(key)), value(v), comment(std::move(c)) {}
  FitsKey(std::string key, bool v, std::string c = {})
      : name(std::move(key)), value(v), comment(std::move(c)) {}
  /// Any integer type (int, long, std::size_t...): stored as int64 (InvalidArgument if it does
  /// not fit).
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  FitsKey(std::string key, I v, std::string c = {})
      : name(std::move(key)), value(to_int64(v, name)), comment(std::move(c)) {}

  bool is_string() const { return std::holds_alternative<std::string>(value); }
  bool is_double() const { return std::holds_alternative<double>(value); }
  bool is_int() const { return std::holds_alternative<std::int64_t>(value); }
  bool is_bool() const { return std::holds_alternative<bool>(value); }

  /// The value; InvalidArgument naming the key if it holds another type (as_double also accepts
  /// an integer, which FITS readers often write for whole numbers).
  const std::string& as_string() const { return get<std::string>("a string"); }
  double as_double() const {
    if (is_int()) return double(std::get<std::int64_t>(value));
    return get<double>("a number");
  }
  std::int64_t as_int() const { return get<std::int64_t>("an integer"); }
  bool as_bool() const { return get<bool>("a logical"); }

  bool operator==(const FitsKey& o) const {
    return name == o.name && value == o.value && comment == o.comment;
  }
  bool operator!=(const FitsKey& o) const { return !(*this == o); }

 private:
  template <class I>
  static std::int64_t to_int64(I v, const std::string& key) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
        throw InvalidArgument("FITS key " + key + " = " + std::to_string(v) +
                              " does not fit a 64-bit signed integer");
      }
    }
    return std::int64_t(v);
  }
  template <class V>
  const V& get(const char* what) const {
    if (!std::holds_alternative<V>(value)) {
      throw InvalidArgument("FITS key " + name + " is not " + what);
    }
    return std::get<V>(value);
  }
};

/// A map read from a FITS file: pixels and geometry, BUNIT ("" when absent) and every other
/// header key except the structural ones (SIMPLE, BITPIX, NAXISn, EXTEND, ...), COMMENT and
/// HISTORY cards, and the WCS keys that the geometry replaces; in header order.
template <class T>
struct FitsMap {
  maps::Map<T> map;
  std::string bunit;
  std::vector<FitsKey> keys;

  /// The first key called `name`, or nullptr.
  const FitsKey* find(const std::string& name) const {
    for (const FitsKey& k : keys)
      if (k.name == name) return &k;
    return nullptr;
  }
};

namespace detail {

inline std::mutex& cfitsio_mutex() {
  static std::mutex m;
  return m;
}

/// cfitsio's text for `status` and its error-message stack, which is emptied.
inline std::string cfitsio_message(int status) {
  char text[FLEN_STATUS] = {};
  fits_get_errstatus(status, text);
  std::string message = "cfitsio status " + std::to_string(status) + " (" + text + ")";
  char line[FLEN_ERRMSG] = {};
  while (fits_read_errmsg(line) > 0) message += "; " + std::string(line);
  return message;
}

/// Closes a cfitsio file handle when it goes out of scope (errors ignored: used on error paths
/// and for read-only files).
struct FitsHandle {
  fitsfile* file = nullptr;
  FitsHandle() = default;
  FitsHandle(const FitsHandle&) = delete;
  FitsHandle& operator=(const FitsHandle&) = delete;
  ~FitsHandle() { close(); }
  void close() {
    if (file) {
      int status = 0;
      fits_close_file(file, &status);
      file = nullptr;
    }
  }
};

inline bool all_digits(const std::string& s, std::size_t from) {
  if (from >= s.size()) return false;
  for (std::size_t i = from; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/// Keys that write_fits writes itself or that would change how the data or the WCS are read:
/// the structural keys, BSCALE/BZERO/BLANK, the WCS of a primary image (paper I, table 7, for
/// the keys used here), and diffpm's FOVDEG.
inline bool is_reserved_fits_key(const std::string& name) {
  static const char* const exact[] = {"",         "SIMPLE",   "BITPIX",  "NAXIS",   "EXTEND",
                                      "XTENSION", "PCOUNT",   "GCOUNT",  "END",     "COMMENT",
                                      "HISTORY",  "CONTINUE", "BSCALE",  "BZERO",   "BLANK",
                                      "BUNIT",    "WCSAXES",  "LONPOLE", "LATPOLE", "RADESYS",
                                      "RADECSYS", "EQUINOX",  "EPOCH",   "WCSNAME", "FOVDEG"};
  for (const char* e : exact)
    if (name == e) return true;
  static const char* const indexed[] = {"NAXIS", "CTYPE", "CUNIT", "CRPIX",
                                        "CRVAL", "CDELT", "CROTA"};
  for (const char* prefix : indexed) {
    const std::string p(prefix);
    if (name.compare(0, p.size(), p) == 0 && all_digits(name, p.size())) return true;
  }
  for (const char* prefix : {"CD", "PC", "PV", "PS"}) {  // CDi_j, PCi_j, PVi_m, PSi_m
    const std::size_t underscore = name.find('_');
    if (name.compare(0, 2, prefix) == 0 && underscore != std::string::npos &&
        all_digits(name.substr(0, underscore), 2) && all_digits(name, underscore + 1)) {
      return true;
    }
  }
  return false;
}

inline bool printable_ascii(const std::string& s) {
  for (char c : s)
    if (c < 32 || c > 126) return false;
  return true;
}

inline void check_fits_key(const FitsKey& key) {
  const std::string& n = key.name;
  bool valid = !n.empty() && n.size() <= 8;
  for (char c : n)
    valid = valid && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
  if (!valid) {
    throw InvalidArgument("FITS key name '" + n +
                          "' (must be 1-8 characters of A-Z, 0-9, '-', '_')");
  }
  if (is_reserved_fits_key(n)) {
    throw InvalidArgument("FITS key " + n + " is written by write_fits itself (reserved)");
  }
  if (key.is_string() && !printable_ascii(key.as_string())) {
    throw InvalidArgument("FITS key " + n + ": string value is not printable ASCII");
  }
  if (key.is_double() && !std::isfinite(std::get<double>(key.value))) {
    throw InvalidArgument("FITS key " + n + " = " + format_number(std::get<double>(key.value)) +
                          " (FITS numbers must be finite)");
  }
  if (!printable_ascii(key.comment)) {
    throw InvalidArgument("FITS key " + n + ": comment is not printable ASCII");
  }
}

inline void write_fits_key(fitsfile* f, const FitsKey& key, int* status) {
  const char* name = key.name.c_str();
  const char* comment = key.comment.c_str();
  if (key.is_string()) {
    // Long-string convention (CONTINUE cards) only when the value does not fit one card.
    fits_write_key_longstr(f, name, key.as_string().c_str(), comment, status);
  } else if (key.is_double()) {
    // 17 significant digits: the shortest precision that reads back every double exactly.
    fits_write_key_dbl(f, name, std::get<double>(key.value), -17, comment, status);
  } else if (key.is_int()) {
    fits_write_key_lng(f, name, LONGLONG(key.as_int()), comment, status);
  } else {
    fits_write_key_log(f, name, key.as_bool() ? 1 : 0, comment, status);
  }
}

/// Reads header key `name` as a double; nullopt if absent. Other cfitsio errors throw IoError.
inline std::optional<double> read_double_key(fitsfile* f, const std::string& path,
                                             const char* name) {
  int status = 0;
  double v = 0.0;
  fits_read_key_dbl(f, name, &v, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  if (status) {
    throw InvalidArgument("'" + path + "': key " + name +
                          " is not a number: " + cfitsio_message(status));
  }
  return v;
}

inline std::optional<std::string> read_string_key(fitsfile* f, const std::string& path,
                                                  const char* name) {
  int status = 0;
  char value[FLEN_VALUE] = {};
  fits_read_key_str(f, name, value, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  if (status) {
    throw InvalidArgument("'" + path + "': key " + name +
                          " is not a string: " + cfitsio_message(status));
  }
  return std::string(value);
}

inline std::string upper_trimmed(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

/// A celestial (longitude, latitude) pair of CTYPEs with the TAN projection: 'RA---TAN' /
/// 'DEC--TAN', 'GLON-TAN' / 'GLAT-TAN', 'ELON-TAN' / 'ELAT-TAN' or 'xxLN-TAN' / 'xxLT-TAN'.
inline bool is_tan_celestial_pair(const std::string& c1, const std::string& c2) {
  if (c1.size() != 8 || c2.size() != 8 || c1.substr(4) != "-TAN" || c2.substr(4) != "-TAN") {
    return false;
  }
  const std::string a = c1.substr(0, 4), b = c2.substr(0, 4);
  if (a == "RA--" && b == "DEC-") return true;
  if (a[0] == b[0] && a[1] == b[1] &&
      ((a.substr(1) == "LON" && b.substr(1) == "LAT") ||
       (a.substr(2) == "LN" && b.substr(2) == "LT"))) {
    return true;
  }
  return false;
}

/// The keys of the current HDU other than the reserved ones, in header order.
inline std::vector<FitsKey> read_user_keys(fitsfile* f, const std::string& path) {
  int status = 0, count = 0;
  fits_get_hdrspace(f, &count, nullptr, &status);
  std::vector<FitsKey> keys;
  for (int k = 1; k <= count && !status; ++k) {
    char name[FLEN_KEYWORD] = {}, value[FLEN_VALUE] = {}, comment[FLEN_COMMENT] = {};
    fits_read_keyn(f, k, name, value, comment, &status);
    if (status) break;
    const std::string key(name);
    if (is_reserved_fits_key(key) || value[0] == '\0') continue;  // undefined values too
    char type = 0;
    int type_status = 0;
    fits_get_keytype(value, &type, &type_status);
    if (type_status) {
      fits_clear_errmsg();
      continue;
    }
    if (type == 'C') {
      char* text = nullptr;  // whole value, CONTINUE cards included; cfitsio allocates it
      fits_read_key_longstr(f, name, &text, comment, &status);
      // The comment of a CONTINUE card comes back with the blank after its '/'.
      const char* c = comment;
      while (*c == ' ') ++c;
      if (!status) keys.emplace_back(key, std::string(text ? text : ""), c);
      if (text) fits_free_memory(text, &type_status);
    } else if (type == 'L') {
      keys.emplace_back(key, value[0] == 'T', comment);
    } else if (type == 'I') {
      LONGLONG v = 0;
      int int_status = 0;
      fits_read_key_lnglng(f, name, &v, nullptr, &int_status);
      if (int_status == 0) {
        keys.emplace_back(key, std::int64_t(v), comment);
      } else {  // an integer beyond 64 bits: keep it as a number
        fits_clear_errmsg();
        double d = 0.0;
        fits_read_key_dbl(f, name, &d, nullptr, &status);
        keys.emplace_back(key, d, comment);
      }
    } else if (type == 'F') {
      double d = 0.0;
      fits_read_key_dbl(f, name, &d, nullptr, &status);
      keys.emplace_back(key, d, comment);
    } else {  // complex values: kept as their text
      keys.emplace_back(key, std::string(value), comment);
    }
  }
  if (status) {
    throw IoError("cannot read the header of '" + path + "': " + cfitsio_message(status));
  }
  return keys;
}

/// The pixel scale of axis `axis` (1 or 2) in degrees from CDELTi (times PCi_i if present) or
/// CDi_i, rejecting rotated or skewed pixel grids.
inline double read_pixel_scale(fitsfile* f, const std::string& path, int axis) {
  const std::string i = std::to_string(axis), j = std::to_string(3 - axis);
  const auto cdelt = read_double_key(f, path, ("CDELT" + i).c_str());
  const auto cd = read_double_key(f, path, ("CD" + i + "_" + i).c_str());
  const auto cd_off = read_double_key(f, path, ("CD" + i + "_" + j).c_str());
  const auto pc = read_double_key(f, path, ("PC" + i + "_" + i).c_str());
  const auto pc_off = read_double_key(f, path, ("PC" + i + "_" + j).c_str());
  const auto crota = read_double_key(f, path, ("CROTA" + i).c_str());
  if ((cd_off && *cd_off != 0.0) || (pc_off && *pc_off != 0.0) || (crota && *crota != 0.0)) {
    throw InvalidArgument("'" + path + "': the pixel grid is rotated or skewed (CD" + i + "_" + j +
                          ", PC" + i + "_" + j + " or CROTA" + i +
                          " is nonzero); a map needs axis-aligned pixels");
  }
  double scale = 0.0;
  if (cd) {
    scale = *cd;
  } else if (cdelt) {
    scale = *cdelt * pc.value_or(1.0);
  } else {
    throw InvalidArgument("'" + path + "': missing WCS key CDELT" + i + " (nor CD" + i + "_" + i +
                          ")");
  }
  if (!std::isfinite(scale) || scale == 0.0) {
    throw InvalidArgument("'" + path + "': pixel scale of axis " + i + " = " +
                          format_number(scale) + " deg");
  }
  return scale;
}

}  // namespace detail

/// Writes `map` to a FITS file at `path` as a 2D primary image, BITPIX -32 for float and -64
/// for double, with the WCS of the file comment, BUNIT = `bunit` (e.g. "" for a convergence),
/// FOVDEG (the field of view exactly as in MapGeometry, so the geometry reads back bit for bit)
/// and `extra_keys` after them, in order (e.g. ZSOURCE, NZFILE, BIN).
///
/// Atomic: the file is written as "<path>.tmp.<pid>" in the same directory and renamed over
/// `path` only once cfitsio has closed it without error; on any failure the temporary file is
/// removed and an existing file at `path` is left as it was. Throws InvalidArgument (before
/// touching the disk) for a map whose data does not match its geometry, an invalid, reserved or
/// repeated key name, a non-finite double or non-ASCII text; IoError naming the path and
/// cfitsio's message when writing fails.
template <class T>
void write_fits(const std::string& path, const maps::Map<T>& map,
                const std::vector<FitsKey>& extra_keys = {}, const std::string& bunit = "") {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "write_fits: float or double maps");
  map.geometry.validate();
  const int n = map.geometry.pixels;
  if (map.data.size() != map.geometry.size()) {
    throw InvalidArgument("write_fits: map holds " + std::to_string(map.data.size()) +
                          " pixels, its geometry " + std::to_string(n) + "^2");
  }
  if (!detail::printable_ascii(bunit)) {
    throw InvalidArgument("write_fits: BUNIT '" + bunit + "' is not printable ASCII");
  }
  for (std::size_t i = 0; i < extra_keys.size(); ++i) {
    detail::check_fits_key(extra_keys[i]);
    for (std::size_t j = 0; j < i; ++j) {
      if (extra_keys[j].name == extra_keys[i].name) {
        throw InvalidArgument("write_fits: FITS key " + extra_keys[i].name + " given twice");
      }
    }
  }

  const std::lock_guard<std::mutex> lock(detail::cfitsio_mutex());
  fits_clear_errmsg();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::remove(tmp.c_str());  // a leftover of a crashed run would make cfitsio refuse to create
  detail::FitsHandle handle;
  int status = 0;
  // The diskfile variants take the name literally: no cfitsio extended-filename syntax.
  fits_create_diskfile(&handle.file, tmp.c_str(), &status);
  const auto fail = [&](const std::string& what) {
    const std::string message = detail::cfitsio_message(status);
    handle.close();
    std::remove(tmp.c_str());
    throw IoError(what + " '" + path + "': " + message);
  };
  if (status) fail("cannot create a temporary file (" + tmp + ") for");

  long naxes[2] = {n, n};
  fits_create_img(handle.file, std::is_same_v<T, float> ? FLOAT_IMG : DOUBLE_IMG, 2, naxes,
                  &status);
  // cfitsio calls do nothing once status is set, so one check after the header suffices.
  fits_write_key_str(handle.file, "BUNIT", bunit.c_str(), "physical unit of the pixel values",
                     &status);
  fits_write_key_lng(handle.file, "WCSAXES", 2, "number of WCS axes", &status);
  fits_write_key_str(handle.file, "CTYPE1", "RA---TAN", "theta_x: RA offset, gnomonic", &status);
  fits_write_key_str(handle.file, "CTYPE2", "DEC--TAN", "theta_y: Dec offset, gnomonic", &status);
  fits_write_key_str(handle.file, "CUNIT1", "deg", "unit of CRVAL1 and CDELT1", &status);
  fits_write_key_str(handle.file, "CUNIT2", "deg", "unit of CRVAL2 and CDELT2", &status);
  const double crpix = 0.5 * (n + 1);  // FITS pixel centres are integers from 1
  fits_write_key_dbl(handle.file, "CRPIX1", crpix, -17, "map centre (pixel)", &status);
  fits_write_key_dbl(handle.file, "CRPIX2", crpix, -17, "map centre (pixel)", &status);
  fits_write_key_dbl(handle.file, "CRVAL1", 0.0, -17, "[deg] RA of the map centre", &status);
  fits_write_key_dbl(handle.file, "CRVAL2", 0.0, -17, "[deg] Dec of the map centre", &status);
  // fov_deg / n rather than pixel_rad() in degrees: the same number up to rounding, and FOVDEG
  // keeps the exact field of view anyway.
  const double cdelt = map.geometry.fov_deg / n;
  fits_write_key_dbl(handle.file, "CDELT1", cdelt, -17, "[deg] pixel side, +: RA grows with x",
                     &status);
  fits_write_key_dbl(handle.file, "CDELT2", cdelt, -17, "[deg] pixel side", &status);
  fits_write_key_dbl(handle.file, "LONPOLE", 180.0, -17, "[deg] native longitude of the pole",
                     &status);
  fits_write_key_str(handle.file, "RADESYS", "ICRS", "celestial reference frame", &status);
  fits_write_key_dbl(handle.file, "FOVDEG", map.geometry.fov_deg, -17,
                     "[deg] field of view on a side (diffpm)", &status);
  fits_write_comment(handle.file,
                     "diffpm flat-sky map: FITS pixel (ix+1, iy+1) is at theta =", &status);
  fits_write_comment(handle.file, "((ix+0.5)/n-0.5, (iy+0.5)/n-0.5) fov; theta = (RA, Dec) offsets",
                     &status);
  for (const FitsKey& key : extra_keys) detail::write_fits_key(handle.file, key, &status);
  if (status) fail("cannot write the header of");

  fits_write_img(handle.file, std::is_same_v<T, float> ? TFLOAT : TDOUBLE, 1,
                 LONGLONG(map.data.size()), const_cast<T*>(map.data.data()), &status);
  if (status) fail("cannot write the pixels of");
  fits_close_file(handle.file, &status);
  handle.file = nullptr;  // closed (or failed to close): either way the handle is gone
  if (status) fail("cannot close (flush)");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError("cannot rename '" + tmp + "' to '" + path + "'");
  }
}

/// Reads a map written by write_fits, or any FITS image with the same kind of WCS: the first
/// HDU with a 2D image (the primary array, or the first image extension if the primary is
/// empty), converted to T by cfitsio (BSCALE/BZERO applied, any BITPIX).
///
/// Geometry: pixels = NAXIS1; fov_deg = FOVDEG if present and equal to |CDELT1| NAXIS1 to a
/// relative 1e-9, else |CDELT1| NAXIS1. Requirements, each an InvalidArgument naming the file
/// and the key or value: NAXIS = 2; NAXIS1 = NAXIS2; CTYPE1/CTYPE2 a celestial TAN pair
/// ('RA---TAN'/'DEC--TAN', 'GLON-TAN'/'GLAT-TAN', ...); CUNITi 'deg' if present; a pixel scale
/// from CDELTi (times PCi_i) or CDi_i with no rotation; |CDELT1| = |CDELT2| to 1e-9; CRPIXi =
/// (n + 1) / 2 to 1e-6 pixels (the map centre; Map angles are relative to it, so CRVAL is not
/// kept). A negative CDELTi (the east-left convention of most observed images) is undone by
/// reversing that pixel axis, so that theta_x is always the RA offset and theta_y the Dec
/// offset. Throws IoError naming the path and cfitsio's message for a missing, unreadable or
/// corrupt file.
template <class T>
FitsMap<T> read_fits(const std::string& path) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "read_fits: float or double maps");
  const std::lock_guard<std::mutex> lock(detail::cfitsio_mutex());
  fits_clear_errmsg();
  detail::FitsHandle handle;
  int status = 0;
  fits_open_diskfile(&handle.file, path.c_str(), READONLY, &status);
  if (status) {
    handle.file = nullptr;
    throw IoError("cannot open FITS file '" + path + "': " + detail::cfitsio_message(status));
  }
  fitsfile* f = handle.file;
  const auto io_fail = [&](const std::string& what) {
    throw IoError("cannot read " + what + " of '" + path + "': " + detail::cfitsio_message(status));
  };

  int naxis = 0;
  fits_get_img_dim(f, &naxis, &status);
  if (status) io_fail("the primary header");
  if (naxis == 0) {  // an empty primary array: look for the first image extension
    int hdus = 0;
    fits_get_num_hdus(f, &hdus, &status);
    for (int h = 2; h <= hdus && naxis == 0 && !status; ++h) {
      int type = 0;
      fits_movabs_hdu(f, h, &type, &status);
      if (!status && type == IMAGE_HDU) fits_get_img_dim(f, &naxis, &status);
    }
    if (status) io_fail("the extensions");
  }
  if (naxis != 2) {
    throw InvalidArgument("'" + path + "': image has NAXIS = " + std::to_string(naxis) +
                          " (a map needs 2)");
  }
  long naxes[2] = {0, 0};
  fits_get_img_size(f, 2, naxes, &status);
  if (status) io_fail("the image size");
  if (naxes[0] != naxes[1]) {
    throw InvalidArgument("'" + path + "': image is not square: NAXIS1 = " +
                          std::to_string(naxes[0]) + ", NAXIS2 = " + std::to_string(naxes[1]));
  }
  if (naxes[0] < 2 || naxes[0] > 65536) {
    throw InvalidArgument("'" + path + "': NAXIS1 = " + std::to_string(naxes[0]) +
                          " (a map has 2 to 65536 pixels per side)");
  }
  const int n = int(naxes[0]);

  // The WCS.
  const auto ctype1 = detail::read_string_key(f, path, "CTYPE1");
  const auto ctype2 = detail::read_string_key(f, path, "CTYPE2");
  if (!ctype1 || !ctype2) {
    throw InvalidArgument("'" + path + "': missing WCS key " + (ctype1 ? "CTYPE2" : "CTYPE1"));
  }
  const std::string c1 = detail::upper_trimmed(*ctype1), c2 = detail::upper_trimmed(*ctype2);
  if (!detail::is_tan_celestial_pair(c1, c2)) {
    throw InvalidArgument("'" + path + "': CTYPE1 = '" + *ctype1 + "', CTYPE2 = '" + *ctype2 +
                          "' (need a celestial TAN pair such as 'RA---TAN' / 'DEC--TAN')");
  }
  for (const char* key : {"CUNIT1", "CUNIT2"}) {
    const auto unit = detail::read_string_key(f, path, key);
    if (unit && detail::upper_trimmed(*unit) != "DEG") {
      throw InvalidArgument("'" + path + "': " + key + " = '" + *unit + "' (need 'deg')");
    }
  }
  const double scale1 = detail::read_pixel_scale(f, path, 1);
  const double scale2 = detail::read_pixel_scale(f, path, 2);
  if (std::abs(std::abs(scale1) - std::abs(scale2)) > 1e-9 * std::abs(scale1)) {
    throw InvalidArgument(
        "'" + path + "': pixels are not square: |CDELT1| = " + format_number(std::abs(scale1)) +
        " deg, |CDELT2| = " + format_number(std::abs(scale2)) + " deg");
  }
  for (const char* key : {"CRPIX1", "CRPIX2"}) {
    const auto crpix = detail::read_double_key(f, path, key);
    if (!crpix) throw InvalidArgument("'" + path + "': missing WCS key " + key);
    if (!(std::abs(*crpix - 0.5 * (n + 1)) <= 1e-6)) {
      throw InvalidArgument("'" + path + "': " + key + " = " + format_number(*crpix) +
                            " is not the map centre " + format_number(0.5 * (n + 1)));
    }
  }
  const double fov_from_wcs = std::abs(scale1) * n;
  double fov_deg = fov_from_wcs;
  if (const auto fov = detail::read_double_key(f, path, "FOVDEG")) {
    if (std::abs(*fov - fov_from_wcs) <= 1e-9 * fov_from_wcs) fov_deg = *fov;
  }
  if (!(fov_deg > 0.0) || !(fov_deg < 90.0)) {
    throw InvalidArgument("'" + path + "': field of view = " + format_number(fov_deg) +
                          " deg (must be in (0, 90))");
  }

  FitsMap<T> out;
  out.map = maps::Map<T>(maps::MapGeometry(n, fov_deg));
  out.bunit = detail::read_string_key(f, path, "BUNIT").value_or("");
  out.keys = detail::read_user_keys(f, path);

  int any_null = 0;
  fits_read_img(f, std::is_same_v<T, float> ? TFLOAT : TDOUBLE, 1, LONGLONG(out.map.data.size()),
                nullptr, out.map.data.data(), &any_null, &status);
  if (status) io_fail("the pixels");
  if (scale1 < 0.0) {
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n / 2; ++ix) std::swap(out.map(ix, iy), out.map(n - 1 - ix, iy));
  }
  if (scale2 < 0.0) {
    for (int iy = 0; iy < n / 2; ++iy)
      for (int ix = 0; ix < n; ++ix) std::swap(out.map(ix, iy), out.map(ix, n - 1 - iy));
  }
  return out;
}

}  // namespace diffpm::io
