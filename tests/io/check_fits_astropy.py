"""Reads FITS maps written by diffpm with astropy and checks pixels, header keys and the WCS.

Run by the fits_astropy ctest test:

    python3 check_fits_astropy.py <fits_astropy_writer executable> <scratch directory>

For each case the writer makes a map whose pixel (ix, iy) holds ix + 1000 iy + 0.25. astropy must
see it as data[iy, ix] (NAXIS1 = x fastest), with BITPIX -32 or -64, the header keys bit for bit,
and a WCS whose pixel centres are at MapGeometry's angles theta = ((i + 0.5) / n - 0.5) fov:
intermediate world coordinates (theta_x, theta_y) in degrees, and on the sky the gnomonic
direction RA = atan(theta_x), Dec = atan(theta_y / sqrt(1 + theta_x^2)) (io/fits.hpp).
"""
import math
import os
import subprocess
import sys
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

CASES = [  # (pixels, fov_deg, precision): even and odd maps, a small and a wide field
    (8, 2.5, "double"),
    (7, 0.7, "float"),
    (64, 20.0, "double"),
]


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_case(writer, directory, n, fov, precision):
    path = os.path.join(directory, f"map_{n}_{precision}.fits")
    subprocess.run([writer, path, str(n), repr(fov), precision], check=True)
    # Any warning astropy raises about our header (a non-standard key, a WCS it has to fix) is
    # an error here.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path) as hdus:
            hdus.verify("exception")
            header = hdus[0].header
            data = np.array(hdus[0].data)
            wcs = WCS(header)

    label = f"{os.path.basename(path)}:"
    check(header["BITPIX"] == (-32 if precision == "float" else -64), f"{label} BITPIX")
    check(data.shape == (n, n), f"{label} shape {data.shape}")
    iy, ix = np.indices((n, n))
    check(np.array_equal(data, ix + 1000.0 * iy + 0.25), f"{label} pixel values or order")
    check(header["ZSOURCE"] == 1.0 / 3.0, f"{label} ZSOURCE = {header['ZSOURCE']!r}")
    check(header.comments["ZSOURCE"] == "source redshift", f"{label} ZSOURCE comment")
    check(header["NZFILE"] == "/data/nz/" + "x" * 100 + ".txt", f"{label} NZFILE (long string)")
    check(header["BIN"] == 3 and isinstance(header["BIN"], int), f"{label} BIN")
    check(header["BORN"] is True, f"{label} BORN")
    check(header["BUNIT"] == "1/arcmin^2", f"{label} BUNIT")
    check(header["FOVDEG"] == fov, f"{label} FOVDEG")

    # WCS of the pixel centres (0-based pixel coordinates, origin = 0).
    check(wcs.naxis == 2 and wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.ctype[1] == "DEC--TAN",
          f"{label} CTYPE {list(wcs.wcs.ctype)}")
    check(wcs.wcs.cunit[0].to_string() == "deg", f"{label} CUNIT1")
    fov_rad = math.radians(fov)
    theta_x = ((ix + 0.5) / n - 0.5) * fov_rad
    theta_y = ((iy + 0.5) / n - 0.5) * fov_rad
    pixels = np.column_stack([ix.ravel(), iy.ravel()]).astype(float)
    transformed = wcs.wcs_pix2world(pixels, 0)
    ra, dec = transformed[:, 0], transformed[:, 1]
    ra_expected = np.degrees(np.arctan(theta_x.ravel())) % 360.0
    dec_expected = np.degrees(np.arctan(theta_y.ravel() / np.sqrt(1.0 + theta_x.ravel() ** 2)))
    # wcslib works in double with trigonometry in degrees: 1e-10 deg (0.4 micro-arcsec) is far
    # above its round-off and far below any pixel (the smallest here is 0.1 deg).
    ra_error = np.abs((ra - ra_expected + 180.0) % 360.0 - 180.0).max()
    dec_error = np.abs(dec - dec_expected).max()
    check(ra_error < 1e-10, f"{label} RA of pixel centres off by {ra_error} deg")
    check(dec_error < 1e-10, f"{label} Dec of pixel centres off by {dec_error} deg")
    # Intermediate world coordinates: exactly MapGeometry's angles, in degrees. Given with FITS's
    # 1-based pixels: with origin = 0, astropy 5.2.1's Wcsprm.p2s returns imgcrd offset by a
    # constant -1 (its world coordinates are right).
    imgcrd = wcs.wcs.p2s(pixels + 1.0, 1)["imgcrd"]
    crd_error = max(np.abs(imgcrd[:, 0] - np.degrees(theta_x.ravel())).max(),
                    np.abs(imgcrd[:, 1] - np.degrees(theta_y.ravel())).max())
    check(crd_error < 1e-12, f"{label} intermediate coordinates off by {crd_error} deg")
    # theta_x points east (RA grows with ix) and theta_y north (io/fits.hpp: CDELT1 > 0).
    check(header["CDELT1"] > 0 and header["CDELT2"] > 0, f"{label} CDELT signs")
    print(f"{label} OK (max RA/Dec error {max(ra_error, dec_error):.2e} deg)")


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} <fits_astropy_writer> <scratch directory>")
    writer, directory = sys.argv[1], sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    for case in CASES:
        check_case(writer, directory, *case)


if __name__ == "__main__":
    main()
