/// \file
/// \brief The flat-sky map types under their lensing names: `lensing::Map<T>` and
/// `lensing::MapGeometry` are `maps::Map<T>` and `maps::MapGeometry` (maps/flat_map.hpp), which
/// io/ reads and writes without depending on lensing/.
#pragma once

#include "diffpm/maps/flat_map.hpp"

namespace diffpm::lensing {

using maps::Map;
using maps::MapGeometry;

}  // namespace diffpm::lensing
