/// \file
/// \brief Writing output files atomically: to a temporary file beside the target, then rename.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "diffpm/core/error.hpp"

namespace diffpm::io {

/// Writes `path` through `write(std::ofstream&)`: the bytes go to "<path>.tmp.<pid>" in the same
/// directory, which is renamed over `path` only once everything is written and flushed. A run
/// that fails half-way (exception, full disk, crash) never leaves a truncated output under the
/// final name. Throws IoError naming the path on any failure, removing the temporary file.
template <class Writer>
void write_atomically(const std::string& path, Writer&& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError("cannot open '" + tmp + "' for writing");
    try {
      write(out);
      out.flush();
    } catch (...) {
      out.close();
      std::remove(tmp.c_str());
      throw;
    }
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      throw IoError("error while writing '" + tmp + "' (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError("cannot rename '" + tmp + "' to '" + path + "'");
  }
}

}  // namespace diffpm::io
