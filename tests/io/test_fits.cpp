// FITS maps: bitwise round trip with geometry and typed header keys, orientation, typed errors,
// atomic writing.
#include <fitsio.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "diffpm/io/fits.hpp"

namespace fs = std::filesystem;
using diffpm::io::FitsKey;

namespace Catch {
template <>
struct StringMaker<FitsKey> {
  static std::string convert(const FitsKey& k) {
    std::string v;
    if (k.is_string()) v = "'" + k.as_string() + "'";
    if (k.is_double()) v = diffpm::format_number(k.as_double());
    if (k.is_int()) v = std::to_string(k.as_int());
    if (k.is_bool()) v = k.as_bool() ? "T" : "F";
    return k.name + " = " + v + " / " + k.comment;
  }
};
}  // namespace Catch

using diffpm::maps::Map;
using diffpm::maps::MapGeometry;

namespace {
std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("diffpm_test_fits_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string tmp_name(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

/// Pixel values with all mantissa bits in use, plus the special values FITS must carry through
/// unchanged: NaN, infinities, -0 and a subnormal.
template <class T>
Map<T> test_map(int n, double fov_deg) {
  Map<T> m(MapGeometry(n, fov_deg));
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) m(ix, iy) = T(std::sin(1.3 * ix + 0.7 * iy * iy) / 3.0);
  m(0, 0) = std::numeric_limits<T>::quiet_NaN();
  m(1, 0) = std::numeric_limits<T>::infinity();
  m(2, 0) = -std::numeric_limits<T>::infinity();
  m(0, 1) = T(-0.0);
  m(1, 1) = std::numeric_limits<T>::denorm_min();
  return m;
}

/// The message of the exception of type E that f throws (a failed check if it throws none).
template <class E, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception of the expected type was thrown");
  return {};
}

/// A FITS image written directly with cfitsio, for the files write_fits would never produce.
void write_raw_fits(const std::string& path, std::vector<long> naxes,
                    const std::function<void(fitsfile*, int*)>& header) {
  std::remove(path.c_str());
  int status = 0;
  fitsfile* f = nullptr;
  fits_create_diskfile(&f, path.c_str(), &status);
  fits_create_img(f, DOUBLE_IMG, int(naxes.size()), naxes.data(), &status);
  header(f, &status);
  long count = 1;
  for (long a : naxes) count *= a;
  std::vector<double> data(count);
  for (long i = 0; i < count; ++i) data[i] = double(i);
  if (count > 0) fits_write_img(f, TDOUBLE, 1, count, data.data(), &status);
  fits_close_file(f, &status);
  REQUIRE(status == 0);
}

/// The WCS write_fits writes, for hand-made files (CDELT1 with the sign given).
void good_wcs(fitsfile* f, int* status, int n, double cdelt1) {
  const double crpix = 0.5 * (n + 1), cdelt = std::abs(cdelt1);
  fits_write_key_str(f, "CTYPE1", "RA---TAN", "", status);
  fits_write_key_str(f, "CTYPE2", "DEC--TAN", "", status);
  fits_write_key_dbl(f, "CRPIX1", crpix, -17, "", status);
  fits_write_key_dbl(f, "CRPIX2", crpix, -17, "", status);
  fits_write_key_dbl(f, "CDELT1", cdelt1, -17, "", status);
  fits_write_key_dbl(f, "CDELT2", cdelt, -17, "", status);
}
}  // namespace

TEMPLATE_TEST_CASE("FITS maps round-trip bit for bit with their geometry and header keys",
                   "[io][fits]", float, double) {
  // An even map with a simple field of view, and an odd one whose fov / n is not a short
  // decimal (the geometry must still come back exactly, through FOVDEG).
  for (const auto& [n, fov] : {std::pair<int, double>{64, 5.0}, {33, 1.0 / 3.0}}) {
    const std::string path = temp_path("roundtrip.fits");
    const Map<TestType> map = test_map<TestType>(n, fov);
    const std::string nz_file(150, 'n');  // longer than a card: CONTINUE convention
    const std::vector<FitsKey> keys = {
        {"ZSOURCE", 1.0 / 3.0, "source redshift"},
        {"NZFILE", "/data/nz/" + nz_file + ".txt", "n(z) of the source bin"},
        {"BIN", 3, "tomographic bin"},
        {"NPART", std::int64_t(1) << 40, "particles"},
        {"BORN", true, "Born approximation"},
        {"TINY", -2.5e-300, ""},
        {"NAME", "kappa map", "what"},
    };
    diffpm::io::write_fits(path, map, keys, "");
    CHECK_FALSE(fs::exists(tmp_name(path)));

    const auto back = diffpm::io::read_fits<TestType>(path);
    CHECK(back.map.geometry == map.geometry);  // exact ==: pixels and fov_deg bit for bit
    REQUIRE(back.map.data.size() == map.data.size());
    CHECK(std::memcmp(back.map.data.data(), map.data.data(), map.data.size() * sizeof(TestType)) ==
          0);
    CHECK(back.bunit.empty());
    REQUIRE(back.keys.size() == keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      INFO("key " << keys[i].name);
      CHECK(back.keys[i] == keys[i]);
    }
    REQUIRE(back.find("ZSOURCE") != nullptr);
    CHECK(back.find("ZSOURCE")->as_double() == 1.0 / 3.0);
    CHECK(back.find("BIN")->as_int() == 3);
    CHECK(back.find("BIN")->as_double() == 3.0);
    CHECK(back.find("BORN")->as_bool());
    CHECK(back.find("NOPE") == nullptr);

    // BITPIX follows T, and the WCS keys hold what the file comment of io/fits.hpp says.
    int status = 0, bitpix = 0;
    fitsfile* f = nullptr;
    fits_open_diskfile(&f, path.c_str(), READONLY, &status);
    fits_get_img_type(f, &bitpix, &status);
    CHECK(bitpix == (std::is_same_v<TestType, float> ? FLOAT_IMG : DOUBLE_IMG));
    double crpix1 = 0, cdelt1 = 0, cdelt2 = 0, crval1 = 1;
    char ctype1[FLEN_VALUE], ctype2[FLEN_VALUE], cunit1[FLEN_VALUE];
    fits_read_key_dbl(f, "CRPIX1", &crpix1, nullptr, &status);
    fits_read_key_dbl(f, "CDELT1", &cdelt1, nullptr, &status);
    fits_read_key_dbl(f, "CDELT2", &cdelt2, nullptr, &status);
    fits_read_key_dbl(f, "CRVAL1", &crval1, nullptr, &status);
    fits_read_key_str(f, "CTYPE1", ctype1, nullptr, &status);
    fits_read_key_str(f, "CTYPE2", ctype2, nullptr, &status);
    fits_read_key_str(f, "CUNIT1", cunit1, nullptr, &status);
    fits_close_file(f, &status);
    REQUIRE(status == 0);
    CHECK(crpix1 == 0.5 * (n + 1));
    CHECK(cdelt1 == fov / n);
    CHECK(cdelt2 == cdelt1);
    // CDELT agrees with MapGeometry::pixel_rad to rounding (1e-15 relative).
    CHECK(cdelt1 == Approx(map.geometry.pixel_rad() * 180.0 / M_PI).epsilon(1e-15));
    CHECK(crval1 == 0.0);
    CHECK(std::string(ctype1) == "RA---TAN");
    CHECK(std::string(ctype2) == "DEC--TAN");
    CHECK(std::string(cunit1) == "deg");
    std::remove(path.c_str());
  }
}

TEST_CASE("read_fits converts precision and keeps BUNIT", "[io][fits]") {
  const std::string path = temp_path("precision.fits");
  const Map<double> map = test_map<double>(16, 2.0);
  diffpm::io::write_fits(path, map, {}, "arcmin");
  const auto as_float = diffpm::io::read_fits<float>(path);
  CHECK(as_float.bunit == "arcmin");
  CHECK(as_float.keys.empty());
  for (std::size_t i = 2; i < map.data.size(); ++i) {  // cfitsio rounds to nearest, like a cast
    if (std::isnan(map.data[i])) continue;
    CHECK(as_float.map.data[i] == float(map.data[i]));
  }
  std::remove(path.c_str());
}

TEST_CASE("read_fits undoes a negative CDELT and reads a map from an image extension",
          "[io][fits]") {
  const std::string path = temp_path("flipped.fits");
  const int n = 4;
  // Pixel values i = ix + 4 iy (write_raw_fits), CDELT1 < 0: RA grows to the left.
  write_raw_fits(path, {n, n}, [&](fitsfile* f, int* st) { good_wcs(f, st, n, -0.5); });
  const auto m = diffpm::io::read_fits<double>(path).map;
  CHECK(m.geometry == MapGeometry(n, 2.0));
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) CHECK(m(ix, iy) == double((n - 1 - ix) + n * iy));

  // Empty primary array, map in the first image extension.
  std::remove(path.c_str());
  int status = 0;
  fitsfile* f = nullptr;
  fits_create_diskfile(&f, path.c_str(), &status);
  fits_create_img(f, DOUBLE_IMG, 0, nullptr, &status);
  long naxes[2] = {n, n};
  fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
  good_wcs(f, &status, n, 0.25);
  std::vector<float> data(n * n, 7.5f);
  fits_write_img(f, TFLOAT, 1, n * n, data.data(), &status);
  fits_close_file(f, &status);
  REQUIRE(status == 0);
  const auto e = diffpm::io::read_fits<float>(path).map;
  CHECK(e.geometry == MapGeometry(n, 1.0));
  CHECK(e.data == data);
  std::remove(path.c_str());
}

TEST_CASE("read_fits names the file and the problem in typed errors", "[io][fits][errors]") {
  using Catch::Matchers::Contains;
  using diffpm::InvalidArgument;
  using diffpm::IoError;
  using diffpm::io::read_fits;
  const std::string path = temp_path("bad.fits");

  const std::string missing = temp_path("does-not-exist.fits");
  CHECK_THAT(thrown_message<IoError>([&] { read_fits<double>(missing); }), Contains(missing));
  {
    std::ofstream text(path);
    text << "not a FITS file\n";
  }
  CHECK_THAT(thrown_message<IoError>([&] { read_fits<double>(path); }), Contains(path));

  write_raw_fits(path, {4, 4, 2}, [](fitsfile*, int*) {});
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("NAXIS = 3") && Contains(path));
  write_raw_fits(path, {4, 6}, [](fitsfile*, int*) {});
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<float>(path); }),
             Contains("not square") && Contains("NAXIS2 = 6"));
  write_raw_fits(path, {4, 4}, [](fitsfile*, int*) {});
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("missing WCS key CTYPE1"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_delete_key(f, "CDELT2", st);
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("missing WCS key CDELT2"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_delete_key(f, "CRPIX1", st);
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("missing WCS key CRPIX1"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_update_key_str(f, "CTYPE1", "RA---SIN", "", st);
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("RA---SIN"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_update_key_dbl(f, "CRPIX1", 2.0, -17, "", st);  // the centre is 2.5
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("CRPIX1 = 2 is not the map centre"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_update_key_dbl(f, "CDELT2", 0.4, -17, "", st);
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("not square: |CDELT1| = 0.5"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_write_key_str(f, "CUNIT1", "rad", "", st);
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("CUNIT1 = 'rad'"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) {
    good_wcs(f, st, 4, 0.5);
    fits_write_key_dbl(f, "PC1_2", 0.1, -17, "", st);
  });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("rotated"));
  write_raw_fits(path, {4, 4}, [](fitsfile* f, int* st) { good_wcs(f, st, 4, 30.0); });
  CHECK_THAT(thrown_message<InvalidArgument>([&] { read_fits<double>(path); }),
             Contains("field of view = 120 deg"));
  std::remove(path.c_str());
}

TEMPLATE_TEST_CASE("write_fits rejects bad keys before touching the disk", "[io][fits][errors]",
                   float, double) {
  using Catch::Matchers::Contains;
  using diffpm::InvalidArgument;
  const std::string path = temp_path("keys.fits");
  std::remove(path.c_str());
  const Map<TestType> map = test_map<TestType>(8, 1.0);
  const auto write = [&](const std::vector<FitsKey>& keys) {
    diffpm::io::write_fits(path, map, keys);
  };
  for (const char* name : {"zsource", "TOOLONGNAME", "A B", "", "Z.1"}) {
    CHECK_THAT(thrown_message<InvalidArgument>([&] {
                 write({{name, 1.0}});
               }),
               Contains("FITS key name '" + std::string(name) + "'"));
  }
  for (const char* name : {"CDELT1", "BUNIT", "NAXIS3", "CD1_1", "PC2_1", "FOVDEG", "SIMPLE"}) {
    CHECK_THAT(thrown_message<InvalidArgument>([&] {
                 write({{name, 1.0}});
               }),
               Contains(std::string(name) + " is written by write_fits"));
  }
  CHECK_THAT(thrown_message<InvalidArgument>([&] {
               write({{"A", 1}, {"A", 2}});
             }),
             Contains("A given twice"));
  CHECK_THAT(thrown_message<InvalidArgument>([&] {
               write({{"ZSOURCE", std::numeric_limits<double>::quiet_NaN()}});
             }),
             Contains("ZSOURCE = nan"));
  CHECK_THAT(thrown_message<InvalidArgument>([&] {
               write({{"NZFILE", "caf\xc3\xa9"}});
             }),
             Contains("NZFILE: string value is not printable ASCII"));
  CHECK_THAT(thrown_message<InvalidArgument>([] { FitsKey("BIG", std::uint64_t(1) << 63); }),
             Contains("BIG = 9223372036854775808"));
  CHECK_THAT(thrown_message<InvalidArgument>([] { FitsKey("X", 1.5).as_string(); }),
             Contains("FITS key X is not a string"));
  Map<TestType> broken = map;
  broken.data.pop_back();
  CHECK_THROWS_AS(diffpm::io::write_fits(path, broken), InvalidArgument);
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(tmp_name(path)));
}

TEMPLATE_TEST_CASE("write_fits is atomic: a failure leaves neither a partial nor a temporary file",
                   "[io][fits][errors]", float, double) {
  using Catch::Matchers::Contains;
  const Map<TestType> map = test_map<TestType>(8, 1.0);

  // An existing file is replaced whole by a successful write.
  const std::string path = temp_path("atomic.fits");
  {
    std::ofstream old(path);
    old << "previous result\n";
  }
  diffpm::io::write_fits(path, map, {{"BIN", 1}});
  CHECK(diffpm::io::read_fits<TestType>(path).find("BIN")->as_int() == 1);
  CHECK_FALSE(fs::exists(tmp_name(path)));
  // A stale temporary file of a crashed run with our pid does not block the next write.
  {
    std::ofstream stale(tmp_name(path));
    stale << "stale";
  }
  diffpm::io::write_fits(path, map, {{"BIN", 2}});
  CHECK(diffpm::io::read_fits<TestType>(path).find("BIN")->as_int() == 2);
  CHECK_FALSE(fs::exists(tmp_name(path)));
  std::remove(path.c_str());

  // The directory does not exist: cfitsio cannot create the temporary file.
  const std::string nowhere = temp_path("no-such-dir") + "/map.fits";
  CHECK_THAT(thrown_message<diffpm::IoError>([&] { diffpm::io::write_fits(nowhere, map); }),
             Contains(nowhere) && Contains("cfitsio"));
  CHECK_FALSE(fs::exists(tmp_name(nowhere)));

  // The target is a directory: everything is written, then the rename fails. The directory is
  // left alone and the temporary file removed.
  const std::string dir = temp_path("a-directory.fits");
  fs::create_directory(dir);
  CHECK_THAT(thrown_message<diffpm::IoError>([&] { diffpm::io::write_fits(dir, map); }),
             Contains("cannot rename") && Contains(dir));
  CHECK(fs::is_directory(dir));
  CHECK_FALSE(fs::exists(tmp_name(dir)));
  fs::remove(dir);
}
