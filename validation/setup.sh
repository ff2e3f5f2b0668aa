#!/usr/bin/env bash
# Creates validation/.venv, the virtual environment of the validation scripts (not run in CI),
# and installs the pinned versions of validation/requirements.txt: numpy, scipy, matplotlib,
# camb, euclidemu2 and jax/jaxpm (for the field-level comparison against JaxPM).
#
# euclidemu2 is built from source and needs GSL and pkg-config; on Debian/Ubuntu:
#   sudo apt-get install libgsl-dev pkg-config
# (it also warns on import that "classy" is missing: that only disables its full-P(k) helper;
# the validation uses its boost factor times CAMB's linear P(k), which needs no CLASS).
#
# Usage: validation/setup.sh [PYTHON]   (default python3; tested with Python 3.11)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${1:-python3}"
venv="$here/.venv"

if ! command -v "$python" >/dev/null; then
  echo "error: '$python' not found" >&2; exit 2
fi
if ! command -v pkg-config >/dev/null || ! pkg-config --exists gsl; then
  echo "error: euclidemu2 needs GSL and pkg-config: sudo apt-get install libgsl-dev pkg-config" >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import contextlib, io
import numpy, scipy, matplotlib, camb
with contextlib.redirect_stdout(io.StringIO()):
    import euclidemu2
print("ok: numpy", numpy.__version__, "scipy", scipy.__version__, "matplotlib",
      matplotlib.__version__, "camb", camb.__version__, "euclidemu2 imported")
PY
echo "done: run the scripts with $venv/bin/python validation/<script>.py --sim PATH/TO/diffpm-sim"
