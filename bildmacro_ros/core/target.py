# SPDX-License-Identifier: Apache-2.0
"""Target densities p* on the grid: Gaussian mixtures, and grayscale pictures (dark = dense)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .family import ExponentialFamily


def gaussian_mixture(family: ExponentialFamily, components: list[dict]) -> np.ndarray:
    """sum_c weight_c N(mean_c, std_c^2 I) on the grid, renormalised with the grid's quadrature."""
    g = family.grid.points
    c1, c2 = np.meshgrid(g, g, indexing="ij")
    density = np.zeros_like(c1)
    for comp in components:
        mx, my = comp["mean"]
        var = float(comp["std"]) ** 2
        density += comp["weight"] * np.exp(-((c1 - mx) ** 2
                                             + (c2 - my) ** 2) / (2 * var)) / (2 * np.pi * var)
    return family.normalise(density)


def image_density(family: ExponentialFamily, pixels: np.ndarray, invert: bool = False,
                  floor: float = 0.01) -> np.ndarray:
    """
    Return a grayscale picture (rows top to bottom, values 0 = black ..

    1 = white) as a density.

    Dark pixels are dense unless invert. The picture is stretched over [-1, 1]^2 with bilinear
    resampling, so row 0 is the top edge (c2 = +1) and column 0 the left edge (c1 = -1). A floor
    (a fraction of the peak) keeps ln p* finite where the picture is blank.
    """
    pixels = np.asarray(pixels, dtype=float)
    if pixels.ndim != 2 or min(pixels.shape) < 2:
        raise ValueError("image must be a 2-D grayscale array of at least 2x2 pixels, got shape "
                         f"{pixels.shape}")
    if not np.all(np.isfinite(pixels)):
        raise ValueError("image has non-finite pixels")
    darkness = pixels if invert else 1.0 - pixels
    rows, cols = pixels.shape
    g = family.grid.points
    # grid point (g_a, g_b) -> fractional pixel (row, col)
    col = (g + 1) / 2 * (cols - 1)
    row = (1 - g) / 2 * (rows - 1)
    c0 = np.clip(np.floor(col).astype(int), 0, cols - 2)
    r0 = np.clip(np.floor(row).astype(int), 0, rows - 2)
    fc = col - c0
    fr = row - r0
    # out[a, b]: a indexes c1 (columns), b indexes c2 (rows)
    d = darkness
    rows, cols, right = r0[None, :], c0[:, None], fc[:, None]
    top = d[rows, cols] * (1 - right) + d[rows, cols + 1] * right
    bottom = d[rows + 1, cols] * (1 - right) + d[rows + 1, cols + 1] * right
    sampled = top * (1 - fr[None, :]) + bottom * fr[None, :]
    peak = sampled.max()
    if peak <= 0:
        raise ValueError("image is blank: no dark pixels to make a density from "
                         "(try invert: true)")
    return family.normalise(np.maximum(sampled, 0.0) + floor * peak)


def load_grayscale(path: str | Path) -> np.ndarray:
    """Read a picture file as grayscale in [0, 1] (PNG, JPEG, ... through Pillow)."""
    from PIL import Image  # matplotlib depends on Pillow; import here keeps the core light

    try:
        with Image.open(path) as img:
            gray = img.convert("L")
            return np.asarray(gray, dtype=float) / 255.0
    except OSError as exc:  # missing, unreadable, or not a picture (PIL's UnidentifiedImageError)
        raise ValueError(f"target image {path}: cannot read it ({exc.strerror or exc})") from None


def build_target(family: ExponentialFamily, spec: dict,
                 base_dir: Path | None = None) -> np.ndarray:
    """
    Return the target density p* on the grid.

    (G, G), normalised, from a validated config entry.
    """
    kind = spec["type"]
    if kind == "gaussian_mixture":
        return gaussian_mixture(family, spec["components"])
    if kind == "image":
        path = Path(spec["path"]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return image_density(family, load_grayscale(path), invert=spec.get("invert", False),
                             floor=spec.get("floor", 0.01))
    raise ValueError(f"unknown target type {kind!r}")
