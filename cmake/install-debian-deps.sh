#!/usr/bin/env bash
# Install the packages needed to build and test diffpm on Debian 12 (or Ubuntu 22.04+).
# Idempotent: packages already present are left alone, and when nothing is missing the script
# touches neither the network nor apt's state. Uses sudo only when not running as root.
set -euo pipefail

# libcfitsio-dev and zlib1g-dev: FITS and PNG maps (io/fits.hpp, io/png.hpp); python3-astropy:
# the fits_astropy test (DIFFPM_TEST_ASTROPY), which reads our FITS files with astropy;
# python3-dev and python3-venv: the Python package (pip install . in a virtual environment needs
# Python's headers to build the extension module, and Debian's python3 has no venv without it).
packages=(build-essential cmake pkg-config libeigen3-dev libfftw3-dev catch2 libbenchmark-dev
          libcfitsio-dev zlib1g-dev python3-astropy python3-dev python3-venv)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian-deps: apt-get not found; install these packages by hand:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-debian-deps: all packages already installed"
else
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-debian-deps: not root and sudo is missing; run as root" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  echo "install-debian-deps: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# CUDA is optional: the toolkit is not a Debian package we install, so only report on it.
if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  echo "install-debian-deps: CUDA compiler found; the CUDA parts will be built"
else
  echo "install-debian-deps: nvcc not found (not on PATH, not in /usr/local/cuda/bin);" \
       "the CUDA parts will be skipped"
fi
