/// \file
/// \brief Umbrella header of diffpm with its file output (target diffpm::io): the core library
/// plus FITS maps (cfitsio) and PNG images (zlib). Programs that include this link diffpm::io
/// (or, without CMake, add -lcfitsio -lz; README.md, "Using the library").
#pragma once

#include "diffpm/diffpm.hpp"
#include "diffpm/io/fits.hpp"
#include "diffpm/io/png.hpp"
