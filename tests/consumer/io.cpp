// A downstream program of diffpm::io (FITS via cfitsio, PNG via zlib): writes a map as FITS and
// PNG, reads the FITS back, and checks the pixels. Its link line must carry cfitsio and zlib,
// which the core target (tests/consumer/main.cpp) does without. Exit code 0 on success.
#include <cstdio>
#include <diffpm/io.hpp>
#include <exception>
#include <iostream>
#include <string>

int main() {
  try {
    diffpm::lensing::Map<float> map(diffpm::lensing::MapGeometry(8, 2.0));
    for (std::size_t i = 0; i < map.data.size(); ++i) map.data[i] = 0.001f * float(i);
    const std::string fits = "consumer_map.fits", png = "consumer_map.png";
    diffpm::io::write_fits(fits, map);
    diffpm::io::write_png(png, map);
    const auto back = diffpm::io::read_fits<float>(fits);
    const bool same = back.map.data == map.data;
    std::remove(fits.c_str());
    std::remove(png.c_str());
    std::cout << (same ? "OK: FITS map read back bit for bit\n" : "FAILED: FITS pixels differ\n");
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::cout << "FAILED: " << e.what() << "\n";
    return 1;
  }
}
