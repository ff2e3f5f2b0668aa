// Writes a map with known pixel values, geometry and header keys for check_fits_astropy.py,
// which reads it back with astropy (the fits_astropy ctest test).
//
//   fits_astropy_writer <path> <pixels> <fov_deg> <float|double>
//
// Pixel (ix, iy) holds ix + 1000 iy + 0.25, exact in float and double. Header keys: ZSOURCE =
// 1/3 (a double needing all 17 digits), NZFILE (a string longer than one card), BIN = 3,
// BORN = T, BUNIT = '1/arcmin^2'.
#include <cstdlib>
#include <iostream>
#include <string>

#include "diffpm/io/fits.hpp"

template <class T>
void write(const std::string& path, int pixels, double fov_deg) {
  diffpm::maps::Map<T> map(diffpm::maps::MapGeometry(pixels, fov_deg));
  for (int iy = 0; iy < pixels; ++iy)
    for (int ix = 0; ix < pixels; ++ix) map(ix, iy) = T(ix + 1000 * iy + 0.25);
  diffpm::io::write_fits(path, map,
                         {{"ZSOURCE", 1.0 / 3.0, "source redshift"},
                          {"NZFILE", "/data/nz/" + std::string(100, 'x') + ".txt", "n(z) file"},
                          {"BIN", 3, "tomographic bin"},
                          {"BORN", true, "Born approximation"}},
                         "1/arcmin^2");
}

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: " << argv[0] << " <path> <pixels> <fov_deg> <float|double>\n";
    return 2;
  }
  try {
    const std::string precision = argv[4];
    const int pixels = std::atoi(argv[2]);
    const double fov = std::strtod(argv[3], nullptr);
    if (precision == "float") {
      write<float>(argv[1], pixels, fov);
    } else if (precision == "double") {
      write<double>(argv[1], pixels, fov);
    } else {
      std::cerr << "precision must be float or double, not '" << precision << "'\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
