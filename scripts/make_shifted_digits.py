"""Write datasets/shifted-digits.npz: the zoo's digits test split, shifted three ways at three severities (lab 11).

Usage: ``.venv/bin/python scripts/make_shifted_digits.py`` (then regenerate the checksum table in
datasets/README.md, see that file). Deterministic: no randomness except seeded noise, and the .npz is written
with a fixed timestamp in its zip headers, so a rerun on the same numpy/scipy writes the same bytes.

The file holds, all float32 8x8 images in [0, 1] (pixel / 16, as ``lk.data.digits``), 360 test images each:
- ``clean``: ``lk.data.digits("test")`` itself; ``y``: its labels (int64);
- ``rotate_1`` .. ``rotate_3``: rotated by 10, 20, 30 degrees about the centre (scipy.ndimage.rotate, bilinear);
- ``noise_1`` .. ``noise_3``: Gaussian pixel noise of sigma 0.1, 0.2, 0.3, clipped
  (``numpy.random.default_rng([0, 11, severity])``);
- ``bright_1`` .. ``bright_3``: brightened: pixel x 1 + 0.15, 0.3, 0.45 added, clipped to 1 (a brighter sensor).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "datasets" / "shifted-digits.npz"
ROTATE_DEG = (10.0, 20.0, 30.0)
NOISE_SIGMA = (0.1, 0.2, 0.3)
BRIGHT_ADD = (0.15, 0.30, 0.45)


def shifted(clean: np.ndarray) -> dict[str, np.ndarray]:
    """The nine shifted copies of `clean` ((N, 8, 8) float32 in [0, 1])."""
    from scipy import ndimage

    out = {}
    for level, deg in enumerate(ROTATE_DEG, 1):
        r = ndimage.rotate(clean, deg, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
        out[f"rotate_{level}"] = np.clip(r, 0, 1)
    for level, sigma in enumerate(NOISE_SIGMA, 1):
        rng = np.random.default_rng([0, 11, level])
        out[f"noise_{level}"] = np.clip(clean + sigma * rng.standard_normal(clean.shape), 0, 1)
    for level, add in enumerate(BRIGHT_ADD, 1):
        out[f"bright_{level}"] = np.clip(clean + add * (clean > 0), 0, 1)        # ink brighter, paper unchanged
    return {k: v.astype(np.float32) for k, v in out.items()}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed-format .npz (zip of .npy) with fixed zip timestamps: same arrays -> same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue(), compresslevel=9)


def main() -> None:
    import labkit as lk

    x, y = lk.data.digits("test")
    clean = x.numpy()[:, 0].astype(np.float32)                         # (360, 8, 8)
    arrays = {"clean": clean, "y": y.numpy().astype(np.int64), **shifted(clean)}
    write_npz(OUT, arrays)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB): "
          + ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
