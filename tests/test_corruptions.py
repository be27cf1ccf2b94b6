"""Corruptions: range and shape, monotone severities (each with its stated measure), seeds, and
agreement with per-image NumPy/SciPy/Pillow statements of the published make_cifar_c.py formulas
fed with the same random numbers (drawn from a torch generator in the order the corruption
draws them). The published code runs on one HxWx3 image in [0, 255]; here in [0, 1]."""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
import pytest
import torch
from corruption_reference import clipped_zoom, hsv2rgb, motion, pil_roundtrip, plasma, rgb2hsv
from PIL import Image
from scipy import ndimage

from classwise.corruptions import CORRUPTIONS, ORDER, CorruptionPass, CorruptionSpec, corrupt, ops, unavailable
from classwise.corruptions.kernels import filters
from classwise.corruptions.kernels.opencv import canny, distance_transform, equalize_hist, water_spatter
from classwise.errors import ClasswiseError


def image(c: int, s: int, n: int = 4) -> torch.Tensor:
    """Smooth waves plus a flat block per channel, on the 8-bit grid: edges and gradients."""
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
    out = []
    for _ in range(n):
        chans = []
        for _ in range(c):
            f = torch.rand(4, generator=g) * 6 + 1
            v = 0.5 + 0.25 * torch.sin(f[0] * 3 * xx + f[1]) * torch.cos(f[2] * 3 * yy + f[3])
            r0, c0 = (torch.rand(2, generator=g) * s * 0.5).long()
            v[r0:r0 + s // 3, c0:c0 + s // 3] = float(torch.rand(1, generator=g))
            chans.append(v)
        out.append(torch.stack(chans))
    return (torch.stack(out).clamp(0, 1) * 255).round() / 255


FROST = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"]


@pytest.fixture(scope="module")
def frost_dir(tmp_path_factory):
    """Five textured stand-ins for the photographs (stored losslessly whatever the name)."""
    d = tmp_path_factory.mktemp("frost")
    rng = np.random.default_rng(0)
    for name in FROST:
        tex = ndimage.gaussian_filter(rng.random((200, 220, 3)), (3, 3, 0))
        Image.fromarray(np.uint8((tex - tex.min()) / np.ptp(tex) * 255)).save(d / name, format="PNG")
    return d


@pytest.fixture(scope="module")
def flat_frost_dir(tmp_path_factory):
    """Uniform 'photographs': the crop then does not matter, the blend formula does."""
    d = tmp_path_factory.mktemp("flatfrost")
    for name in FROST:
        Image.fromarray(np.full((200, 220, 3), (200, 220, 250), np.uint8)).save(d / name, format="PNG")
    return d


def run(name, x, severity, seed=0, **kw):
    return corrupt(x, name, severity, torch.Generator().manual_seed(seed), **kw)


def kw_for(name, frost_dir):
    return {"frost_dir": frost_dir} if name == "frost" else {}


# ---- range, shape, seeds ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["elastic_transform", "contrast", "gaussian_noise"])
def test_cpu_chunks_are_the_corruption_of_each_chunk_in_turn(name):
    from classwise.corruptions import ops

    x = image(3, 32, n=7).contiguous(memory_format=torch.channels_last)
    corruption = CORRUPTIONS[name]
    if corruption.chunk is not None:  # chunks of 3, 3 and 1 images
        corruption = dataclasses.replace(corruption, chunk=3 * x[0].numel())
    g = torch.Generator().manual_seed(4)
    step = 3 if corruption.chunk else 7  # the noises: the whole batch in one piece
    fn = (lambda x, s, g: corruption.fn(x, s, corruption.draw(x, g))) if corruption.draw else corruption.fn
    parts = [fn(x[i:i + step].contiguous(), 4, g) for i in range(0, 7, step)]
    y = corruption(x, 4, torch.Generator().manual_seed(4), quantize=True)
    assert torch.equal(y, ops.quantize(torch.cat(parts)))
    assert y.is_contiguous(memory_format=torch.channels_last)  # the input's layout
    assert CORRUPTIONS[name](x[:2].contiguous(), 4, g).is_contiguous()  # one piece, in its layout too
    if name == "contrast":  # per image: the chunks do not show
        assert torch.equal(y, ops.quantize(CORRUPTIONS[name].fn(x.contiguous(), 4, None)))


def test_glass_blur_in_chunks_of_images_is_the_blur_of_the_batch(monkeypatch):
    from classwise.corruptions import blur

    x = image(3, 32, n=7)
    whole = run("glass_blur", x, 4, seed=2)
    monkeypatch.setattr(blur, "CPU_CHUNK", 3 * x[0].numel())  # chunks of 3, 3 and 1 images, one draw
    assert torch.equal(run("glass_blur", x, 4, seed=2), whole)
    assert not torch.equal(run("glass_blur", x, 4, seed=3), whole)


@pytest.mark.parametrize("name", ORDER)
def test_each_severity_is_the_single_call_from_the_same_state(name, frost_dir):
    """Common random numbers: `each_severity` gives, at each severity asked for and in that order,
    the image one call gives from the generator's state on entry, and what a severity does not
    change (`draw`) is made once."""
    x, kw = image(3, 32, n=3).contiguous(memory_format=torch.channels_last), kw_for(name, frost_dir)
    corruption, draws = CORRUPTIONS[name], []
    if corruption.draw:
        corruption = dataclasses.replace(corruption, draw=lambda x, g, d=corruption.draw: draws.append(1) or d(x, g))
    got = list(corruption.each_severity(x, [5, 1, 3], torch.Generator().manual_seed(3), quantize=True, **kw))
    assert [s for s, _ in got] == [5, 1, 3]
    assert len(draws) == (1 if corruption.draw else 0)
    for s, y in got:
        assert torch.equal(y, corruption(x, s, torch.Generator().manual_seed(3), quantize=True, **kw)), s
        assert y.is_contiguous(memory_format=torch.channels_last)  # the input's layout, as the model reads it
    if name in ("gaussian_noise", "speckle_noise"):  # the same normals scaled: no value's distortion shrinks
        by_severity = dict(got)
        assert ((by_severity[5] - x).abs() >= (by_severity[3] - x).abs()).all()
        assert ((by_severity[3] - x).abs() >= (by_severity[1] - x).abs()).all()
    with pytest.raises(ValueError, match="severity must be 1..5"):
        list(corruption.each_severity(x, [2, 6]))


@pytest.mark.parametrize("name", ORDER)
def test_range_shape_and_seed(name, frost_dir):
    for c, s in ((1, 28), (3, 32)):
        x = image(c, s, n=2)
        for sev in (1, 5):
            y = run(name, x, sev, **kw_for(name, frost_dir))
            assert y.shape == x.shape and y.dtype == x.dtype
            assert float(y.min()) >= 0 and float(y.max()) <= 1
            assert torch.equal(y, run(name, x, sev, **kw_for(name, frost_dir)))  # same seed, same images
        one = image(c, s, n=1)  # one image and channel: where a "copy" may be a view and in-place ops leak
        kept = one.clone()
        run(name, one, 5, **kw_for(name, frost_dir))
        assert torch.equal(one, kept), "the input was modified"
    x = image(3, 32, n=2)
    random = name not in {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "pixelate",
                          "jpeg_compression", "saturate"}
    kw = kw_for(name, frost_dir)
    differs = not torch.equal(run(name, x, 3, 0, **kw), run(name, x, 3, 1, **kw))
    assert differs == random


def test_frost_unavailable_without_textures(tmp_path, monkeypatch):
    monkeypatch.setattr("classwise.corruptions.weather.installed_frost_dir", lambda: None)
    assert "--frost-dir" in unavailable("frost")
    assert "lacks" in unavailable("frost", tmp_path)
    with pytest.raises(ClasswiseError, match="frost is unavailable"):
        run("frost", image(3, 32, 1), 1)


def test_frost_from_installed_package(tmp_path, monkeypatch, frost_dir):
    """An installed imagecorruptions ships the photographs in its frost/ folder: used without
    --frost-dir, named in the spec, and the same images as passing that folder."""
    import shutil

    from classwise.corruptions import corruption_specs

    pkg = tmp_path / "site" / "imagecorruptions"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    shutil.copytree(frost_dir, pkg / "frost")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert unavailable("frost") is None
    spec = corruption_specs(["frost", "fog"], [2])
    assert spec[0].frost_dir == str(pkg / "frost") and spec[1].frost_dir is None
    x = image(3, 32, 2)
    assert torch.equal(run("frost", x, 2), run("frost", x, 2, frost_dir=frost_dir))
    (pkg / "frost" / "frost3.png").unlink()  # an incomplete folder is not used
    assert "--frost-dir" in unavailable("frost")


# ---- monotone severities ---------------------------------------------------------------------

def mean_abs(x, y):
    return float((y - x).abs().mean())


def hf_energy(x, y):
    """Energy of neighbour differences kept by the corruption (a blur loses it)."""
    def e(t):
        return float(((t[..., 1:, :] - t[..., :-1, :]) ** 2).mean() + ((t[..., :, 1:] - t[..., :, :-1]) ** 2).mean())
    return -e(y) / e(x)  # rises as energy is lost


def decorrelation(x, y):
    a, b = x - x.mean(), y - y.mean()
    return 1 - float((a * b).sum() / (a.norm() * b.norm()))


# the measure per corruption and which severities must be ordered by it; the published table is
# not monotone in every parameter (see the notes)
MONOTONE = {
    "gaussian_noise": (mean_abs, [1, 2, 3, 4, 5]),
    "shot_noise": (mean_abs, [1, 2, 3, 4, 5]),
    "impulse_noise": (mean_abs, [1, 2, 3, 4, 5]),
    "speckle_noise": (mean_abs, [1, 2, 3, 4, 5]),
    "defocus_blur": (hf_energy, [1, 2, 3, 4, 5]),
    "gaussian_blur": (hf_energy, [1, 2, 3, 4, 5]),
    "zoom_blur": (hf_energy, [1, 2, 3, 4, 5]),
    # radius 6 and 8 at sigma 2 differ by taps of weight < 1e-9: severities 3 and 4 tie
    "motion_blur": (hf_energy, [1, 2, 3, 5]),
    "snow": (mean_abs, [1, 2, 3, 4, 5]),
    # the image is dimmed less (a) as the frost weighs more (b): the share of frost, seen as the
    # loss of correlation with the image, rises
    "frost": (decorrelation, [1, 2, 3, 4, 5]),
    "fog": (mean_abs, [1, 2, 3, 4, 5]),
    "brightness": (mean_abs, [1, 2, 3, 4, 5]),
    "contrast": (mean_abs, [1, 2, 3, 4, 5]),
    "pixelate": (mean_abs, [1, 2, 3, 4, 5]),
    "jpeg_compression": (mean_abs, [1, 2, 3, 4, 5]),
}


@pytest.mark.parametrize("name", sorted(MONOTONE))
def test_severity_raises_distortion(name, frost_dir):
    measure, order = MONOTONE[name]
    for c, s in ((3, 32), (1, 28)):
        x = image(c, s, n=8)
        d = [measure(x, run(name, x, sev, **kw_for(name, frost_dir))) for sev in order]
        assert all(b > a for a, b in zip(d, d[1:], strict=False)), (name, c, d)


def test_severity_glass_blur():
    """The table raises the shuffle passes (1, 1, 1, 2, 2) and, within equal passes, sigma: on
    white noise the kept high-frequency energy falls with sigma within passes, and a coordinate
    ramp moves further with the second pass."""
    x = (torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 255).round() / 255
    d = [hf_energy(x, run("glass_blur", x, sev)) for sev in range(1, 6)]
    assert d[0] < d[1] < d[2] and d[3] < d[4], d
    ramp = (torch.arange(32.0) / 31).view(1, 1, 32, 1).expand(4, 3, 32, 32)
    moved = [mean_abs(ramp[..., 4:-4, 4:-4], run("glass_blur", ramp, sev)[..., 4:-4, 4:-4]) for sev in (3, 4)]
    assert moved[1] > 1.5 * moved[0], moved


def test_severity_elastic_non_affine_part():
    """The table shrinks the random affine jitter and grows the elastic field: fed coordinate
    images (bilinear reads of a ramp are exact), the RMS residual of the mapping after the best
    affine fit rises with severity."""
    h = w = 32
    rows = torch.arange(h, dtype=torch.float64).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=torch.float64).view(1, w).expand(h, w)
    coords = torch.stack([rows / (h - 1), cols / (w - 1), torch.zeros(h, w, dtype=torch.float64)])[None].repeat(6, 1,
                                                                                                                1, 1)
    inner = torch.zeros(h, w, dtype=torch.bool)
    inner[4:-4, 4:-4] = True
    a = torch.stack([rows[inner], cols[inner], torch.ones(int(inner.sum()), dtype=torch.float64)], 1)
    res = []
    for sev in range(1, 6):
        y = run("elastic_transform", coords, sev)
        src = torch.stack([y[:, 0][:, inner] * (h - 1), y[:, 1][:, inner] * (w - 1)], -1)
        fit = torch.linalg.lstsq(a.expand(6, -1, -1), src).solution
        res.append(float((a @ fit - src).pow(2).sum(-1).mean().sqrt()))
    assert all(b > a for a, b in zip(res, res[1:], strict=False)), res


def test_severity_spatter_and_saturate():
    """Spatter is water at 1-3 and mud at 4-5, saturate desaturates at 1-2 and saturates at 3-5:
    the distortion rises within each branch."""
    x = image(3, 32, n=8)
    sp = [mean_abs(x, run("spatter", x, sev)) for sev in range(1, 6)]
    assert sp[0] < sp[1] < sp[2] and sp[3] < sp[4], sp
    sa = [mean_abs(x, run("saturate", x, sev)) for sev in range(1, 6)]
    assert sa[0] < sa[1] and sa[2] < sa[3] < sa[4], sa


# ---- agreement with the published formulas, per image ------------------------------------------

def torch_uniform(g: torch.Generator):
    """U[0, 1) arrays drawn from `g` as the tensor ops draw them (float32, then widened)."""
    return lambda shape: torch.rand((1, *shape), generator=g)[0].double().numpy()


def hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).double().numpy()


@pytest.fixture(scope="module")
def img():
    return image(3, 32, n=1)


def check(ours: torch.Tensor, ref: np.ndarray, tol: float, mean_tol: float | None = None):
    diff = np.abs(hwc(ours) - ref)
    assert diff.max() <= tol, diff.max()
    if mean_tol is not None:
        assert diff.mean() <= mean_tol, diff.mean()


def streams(shape, generator, fill, dtype=torch.float32) -> torch.Tensor:
    """The documented draw of the noises and elastic's field: two integers from the caller's
    generator seed two fresh generators, and each fills one half of the flattened batch."""
    seeds = torch.randint(0, 2**62, (2,), generator=generator).tolist()
    n = int(np.prod(shape))
    out = torch.empty(n, dtype=dtype)
    for i, s in enumerate(seeds):
        fill(out[n * i // 2:n * (i + 1) // 2], torch.Generator().manual_seed(s))
    return out.view(shape)


def test_reference_noises(img):
    x = hwc(img)
    noise = hwc(streams(img.shape, torch.Generator().manual_seed(5), lambda part, g: part.normal_(generator=g)))
    for sev, c in enumerate([0.04, 0.06, 0.08, 0.09, 0.10], 1):
        check(run("gaussian_noise", img, sev, 5), np.clip(x + noise * c, 0, 1), 1e-6)
    for sev, c in enumerate([0.06, 0.1, 0.12, 0.16, 0.2], 1):
        check(run("speckle_noise", img, sev, 5), np.clip(x + x * noise * c, 0, 1), 1e-6)


def test_reference_impulse_noise(img):
    """skimage's s&p: each value flipped with probability `amount`, to 1 or 0 by a fair coin.
    Drawn per half as geometric gaps between flipped values (trials to the next success), then
    a 0/1 coin per flipped value; here the gaps become positions with NumPy."""
    x = hwc(img).transpose(2, 0, 1).reshape(-1)  # in the batch's flat (C, H, W) order
    n = len(x)
    for sev, amount in enumerate([0.01, 0.02, 0.03, 0.05, 0.07], 1):
        ref = x.copy()
        draws = int(n / 2 * amount + 6 * (n / 2 * amount) ** 0.5) + 16
        seeds = torch.randint(0, 2**62, (2,), generator=torch.Generator().manual_seed(5)).tolist()
        for i, seed in enumerate(seeds):
            g, lo, hi = torch.Generator().manual_seed(seed), n * i // 2, n * (i + 1) // 2
            gaps = torch.empty(draws, dtype=torch.int64).geometric_(amount, generator=g).numpy()
            assert gaps.sum() >= hi - lo  # one batch of gaps covers the half (else it draws more)
            pos = np.cumsum(gaps) - 1
            pos = pos[pos < hi - lo]
            ref[lo + pos] = torch.randint(0, 2, (len(pos),), generator=g).numpy()
        ours = run("impulse_noise", img, sev, 5)[0].double().numpy().reshape(-1)
        assert np.array_equal(ours, ref)
    big = torch.full((2, 3, 200, 200), 0.5)
    for sev, amount in enumerate([0.01, 0.02, 0.03, 0.05, 0.07], 1):  # the rates, within 4 standard errors
        y = run("impulse_noise", big, sev)
        flipped = float((y != 0.5).double().mean())
        assert abs(flipped - amount) < 4 * (amount * (1 - amount) / big.numel()) ** 0.5
        assert abs(float((y == 1).sum() / (y != 0.5).sum()) - 0.5) < 4 * (0.25 / (amount * big.numel())) ** 0.5


def test_reference_shot_noise_distribution():
    """Poisson(x c) / c against SciPy's Poisson pmf, a chi-square test per 8-bit level (and for
    values off the 8-bit grid, which go through torch.poisson), at severities 1 and 5."""
    from scipy import stats

    for sev, c in [(1, 500), (5, 50)]:
        for level in [1, 40, 200, 255]:
            for x in [level / 255, level / 255 + 0.3 / 255]:
                y = run("shot_noise", torch.full((1, 1, 300, 300), x), sev, seed=level)
                k = (y.double() * c).round().long().flatten().numpy()
                lam = x * c
                lo, hi = int(stats.poisson.ppf(1e-4, lam)), min(int(stats.poisson.isf(1e-4, lam)), c - 1)
                cdf = stats.poisson.cdf(np.arange(lo, hi + 1), lam)
                expect = np.diff(np.concatenate([[0], cdf])) * len(k)
                expect[-1] += (1 - cdf[-1]) * len(k)
                observed = np.bincount(np.clip(k, lo, hi) - lo, minlength=hi - lo + 1)
                keep = expect > 5
                chi2 = ((observed[keep] - expect[keep]) ** 2 / expect[keep]).sum()
                assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4, (sev, x, chi2)


def test_reference_blurs(img):
    x = hwc(img)
    for sev, s in enumerate([.4, .6, 0.7, .8, 1], 1):  # skimage gaussian = scipy's, nearest border
        check(run("gaussian_blur", img, sev), ndimage.gaussian_filter(x, (s, s, 0), mode="nearest"), 1e-5)
    for sev, (radius, alias) in enumerate([(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)], 1):
        t = np.arange(-8, 9)
        xx, yy = np.meshgrid(t, t)
        disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
        disk /= disk.sum()
        g = np.exp(-np.array([1.0, 0, 1]) / (2 * alias**2))  # cv2.getGaussianKernel(3, alias)
        disk = ndimage.correlate1d(ndimage.correlate1d(disk, g / g.sum(), 0, mode="mirror"), g / g.sum(), 1,
                                   mode="mirror")
        ref = np.stack([ndimage.correlate(x[..., d], disk, mode="mirror") for d in range(3)], -1)  # cv2.filter2D
        check(run("defocus_blur", img, sev), np.clip(ref, 0, 1), 1e-5)
    for sev, stop in enumerate([1.06, 1.11, 1.16, 1.21, 1.26], 1):
        out = sum(clipped_zoom(x, z) for z in np.arange(1, stop, 0.01))
        check(run("zoom_blur", img, sev), np.clip((x + out) / (len(np.arange(1, stop, 0.01)) + 1), 0, 1), 1e-5)


@pytest.mark.parametrize("shape", [(9, 3, 32, 32), (5, 1, 28, 28), (4, 2, 20, 37)])
def test_compiled_motion_blur_is_the_tensor_one(shape):
    """The CPU's compiled loop against the tensor form CUDA and MPS run, every image its own
    angle over motion blur's range and snow's (-135..-45: rows shift both ways), and a radius
    whose taps reach past the image."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=g)
    for radius, sigma, lo in [(6, 1, -45), (9, 2.5, -45), (14, 12, -135), (25, 8, -135)]:
        angle = torch.rand(shape[0], generator=g, dtype=torch.float64) * 90 + lo
        got = filters.directional_blur(x, radius, sigma, angle)
        torch.testing.assert_close(got, ops.directional_blur_tensor(x, radius, sigma, angle), rtol=0, atol=1e-6)
        clipped = filters.directional_blur(x * 3 - 1, radius, sigma, angle, clip=True)
        torch.testing.assert_close(clipped, ops.directional_blur_tensor(x * 3 - 1, radius, sigma, angle).clamp(0, 1),
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["nearest", "symmetric", "mirror"])
def test_compiled_gaussian_blur_is_the_matrix_one(mode, monkeypatch):
    """The CPU's compiled blur against the two matrix products CUDA and MPS run (and the CPU
    past 9 taps), kernels from 3 taps to longer than a side."""
    monkeypatch.setattr(filters, "MIN_PLANES", 0)  # small batches take the compiled loop too
    g = torch.Generator().manual_seed(4)
    for shape in [(5, 3, 32, 32), (3, 2, 11, 6)]:
        x = torch.rand(shape, generator=g) * 1.4 - 0.2
        for sigma in (0.25, 0.5, 0.7, 1.0):
            k = ops.gaussian_kernel1d(sigma)
            torch.testing.assert_close(filters.gaussian_blur(x, sigma, mode), ops.separable(x, k, k, mode),
                                       rtol=0, atol=1e-6)
            torch.testing.assert_close(filters.gaussian_blur(x, sigma, mode, clip=True),
                                       ops.separable(x, k, k, mode).clamp(0, 1), rtol=0, atol=1e-6)


def test_compiled_glass_is_the_tensor_one():
    """The CPU's compiled walk and blur-shuffle-blur against the tensor forms CUDA and MPS run."""
    from classwise.corruptions.blur import glass_moves_tensor

    g = torch.Generator().manual_seed(6)
    for n, c, h, w in [(6, 3, 32, 32), (4, 1, 9, 13)]:
        words = ops.random_words(n * (h - 2) * (w - 2) * 2, g)
        first = filters.glass_moves_compiled(words, n, h, w, None)
        assert torch.equal(first, glass_moves_tensor(words, n, h, w, None))
        assert not torch.equal(first, torch.arange(h * w).expand(n, -1))  # the walk moved pixels
        words = ops.random_words(n * (h - 2) * (w - 2) * 2, g)
        again = filters.glass_moves_compiled(words, n, h, w, first)
        assert torch.equal(again, glass_moves_tensor(words, n, h, w, first))
        x = torch.rand((n, c, h, w), generator=g)
        for sigma in (0.05, 0.25, 0.4):
            blurred = ops.quantize(ops.separable(x, *[ops.gaussian_kernel1d(sigma)] * 2, "nearest"))
            moved = blurred.reshape(n, c, h * w).gather(2, first[:, None].expand(n, c, -1)).view(n, c, h, w)
            ref = ops.separable(moved, *[ops.gaussian_kernel1d(sigma)] * 2, "nearest").clamp(0, 1)
            got = filters.glass(x, sigma, first)
            # float32 sums in another order: a value on an 8-bit boundary may store one level apart
            assert (got - ref).abs().max() <= 1.01 / 255
            assert (got - ref).abs().gt(1e-6).float().mean() < 0.01


def test_reference_motion_and_glass(img):
    x = hwc(img)
    for sev, (radius, sigma) in enumerate([(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)], 1):
        angle = float(torch.rand(1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)) * 90 - 45
        check(run("motion_blur", img, sev, 5), np.clip(motion(x, radius, sigma, angle), 0, 1), 1e-5)
    for sev, (sigma, delta, passes) in enumerate([(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                                                  (0.4, 1, 2)], 1):
        g = torch.Generator().manual_seed(5)
        ref = np.uint8(ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="nearest") * 255)
        for _ in range(passes):  # the published loop as written, NumPy row views and all
            n = (32 - 2 * delta) ** 2 * 2  # fair bits, 31 from each drawn 31-bit integer: offsets -1 or 0
            words = streams((-(-n // 31),), g, lambda part, g: part.random_(generator=g), torch.int32)
            d = -np.array([(int(word) >> k) & 1 for word in words for k in range(31)][:n]).reshape(-1, 2)
            k = 0
            for h in range(32 - delta, delta, -1):
                for w in range(32 - delta, delta, -1):
                    dx, dy = d[k]
                    k += 1
                    hp, wp = h + dy, w + dx
                    ref[h, w], ref[hp, wp] = ref[hp, wp], ref[h, w]
        ref = np.clip(ndimage.gaussian_filter(ref / 255.0, (sigma, sigma, 0), mode="nearest"), 0, 1)
        check(run("glass_blur", img, sev, 5), ref, 1.01 / 255, 2e-4)


def test_reference_fog_snow_frost(img, flat_frost_dir):
    x = hwc(img)
    for sev, (a, decay) in enumerate([(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)], 1):
        top = x.max()
        layer = plasma(32, decay, torch_uniform(torch.Generator().manual_seed(5)))[:32, :32, None]
        ref = np.clip((x + a * layer) * top / (top + a), 0, 1)
        check(run("fog", img, sev, 5), ref, 1e-5)
    table = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)]
    for sev, (loc, scale, zoom, thr, radius, sigma, keep) in enumerate(table, 1):
        g = torch.Generator().manual_seed(5)
        layer = streams((32, 32), g, lambda part, g: part.normal_(generator=g)).double().numpy() * scale + loc
        angle = float(torch.rand(1, generator=g, dtype=torch.float64)) * 90 - 135
        layer = clipped_zoom(layer, zoom)
        layer[layer < thr] = 0
        layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8) / 255.0
        layer = np.round(motion(layer[..., None], radius, sigma, angle) * 255) / 255  # 8-bit PNG back
        grey = (x * np.array([0.299, 0.587, 0.114])).sum(-1, keepdims=True)
        blend = keep * x + (1 - keep) * np.maximum(x, grey * 1.5 + 0.5)
        check(run("snow", img, sev, 5), np.clip(blend + layer + np.rot90(layer, k=2), 0, 1), 1.01 / 255, 1e-3)
    colour = np.array([200, 220, 250]) / 255.0
    for sev, (a, b) in enumerate([(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)], 1):
        check(run("frost", img, sev, frost_dir=flat_frost_dir), np.clip(a * x + b * colour, 0, 1), 1e-6)


def test_reference_colour(img):
    x = hwc(img)
    grey = np.full((1, 3, 32, 32), 0.5, dtype=np.float32)
    mixed = torch.cat([img, torch.from_numpy(grey)], 0)  # a grey image: hue 0 in scikit-image
    for sev, c in enumerate([.05, .1, .15, .2, .3], 1):
        hsv = rgb2hsv(x)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        check(run("brightness", img, sev), np.clip(hsv2rgb(hsv), 0, 1), 1e-5)
    for sev, (a, b) in enumerate([(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)], 1):
        out = run("saturate", mixed, sev)
        for i in range(2):
            hsv = rgb2hsv(hwc(mixed[i:i + 1]))
            hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
            check(out[i:i + 1], np.clip(hsv2rgb(hsv), 0, 1), 1e-5)
    for sev, c in enumerate([.75, .5, .4, .3, 0.15], 1):
        means = x.mean(axis=(0, 1), keepdims=True)
        check(run("contrast", img, sev), np.clip((x - means) * c + means, 0, 1), 1e-6)


def test_reference_elastic(img):
    x = hwc(img)
    table = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)]
    for sev, params in enumerate(table, 1):
        alpha, sigma, jitter = (v * 32 for v in params)
        g = torch.Generator().manual_seed(5)
        centre, sq = np.array([16.0, 16.0]), 32 // 3
        pts1 = np.array([centre + sq, [centre[0] + sq, centre[1] - sq], centre - sq])
        pts2 = pts1 + (torch.rand((1, 3, 2), generator=g)[0].double().numpy() * 2 - 1) * jitter
        m = np.linalg.solve(np.c_[pts1, np.ones(3)], pts2).T  # cv2.getAffineTransform
        inv = np.linalg.inv(m[:, :2])
        rows, cols = np.mgrid[0:32, 0:32].astype(np.float64)
        src = np.einsum("ij,jhw->ihw", inv, np.stack([cols, rows]) - m[:, 2:, None])
        # cv2.warpAffine, bilinear, reflect-101 (scipy's mirror); OpenCV's 1/32-pixel fixed point is not modelled
        warped = np.stack([ndimage.map_coordinates(x[..., d], [src[1], src[0]], order=1, mode="mirror")
                           for d in range(3)], -1)
        noise = streams((1, 2, 32, 32), g, lambda part, g: part.uniform_(-1, 1, generator=g))[0].double().numpy()
        dx, dy = (ndimage.gaussian_filter(noise[i], sigma, mode="reflect", truncate=3) * alpha for i in range(2))
        ref = np.stack([ndimage.map_coordinates(warped[..., d], [rows + dy, cols + dx], order=1, mode="reflect")
                        for d in range(3)], -1)
        check(run("elastic_transform", img, sev, 5), np.clip(ref, 0, 1), 1e-4)


def test_reference_spatter_mud(img):
    x = hwc(img)
    mud = {4: (0.65, 0.1, 0.7, 0.69, 0.6), 5: (0.65, 0.1, 0.5, 0.68, 0.6)}
    for sev, (loc, scale, sigma, thr, intensity) in mud.items():
        layer = streams((32, 32), torch.Generator().manual_seed(5), lambda part, g: part.normal_(generator=g))
        layer = layer.double().numpy()
        layer = ndimage.gaussian_filter(layer * scale + loc, sigma, mode="nearest")
        layer[layer < thr] = 0
        m = ndimage.gaussian_filter(np.where(layer > thr, 1.0, 0.0), intensity, mode="nearest")
        m[m < 0.8] = 0
        ref = np.clip(x * (1 - m[..., None]) + np.array([63, 42, 20]) / 255.0 * m[..., None], 0, 1)
        check(run("spatter", img, sev, 5), ref, 1e-5)


def test_reference_opencv_steps():
    """The 5x5 chamfer distance (steps 1, 1.4, 2.1969) from one zero pixel; Canny's hysteresis
    (a weak edge is kept only where it touches a strong one); equalizeHist's lookup table
    (cumulative counts past the first level, scaled to 255)."""
    zero = np.zeros((1, 9, 9), bool)
    zero[0, 4, 4] = True
    d = distance_transform(zero, 20)[0]
    assert d[4, 5] == 1 and abs(d[5, 5] - 1.4) < 1e-6 and abs(d[5, 6] - 2.1969) < 1e-5
    assert abs(d[4, 8] - 4) < 1e-6 and abs(d[6, 6] - 2.8) < 1e-5
    # images side by side in the kernels' lanes, 17 of them (past one group of 16): each as if alone
    u = np.random.default_rng(0).random((17, 24, 24))
    batch = u < np.array([0.7, 2] + [0.1] * 14 + [-1])[:, None, None]  # the last has no zero pixel
    batch[1] = False
    batch[1, 0, 0] = True  # one zero pixel in a corner: distances past the cap
    alone = np.concatenate([distance_transform(b[None], 20) for b in batch])
    assert np.array_equal(distance_transform(batch, 20), alone)
    assert alone[1].max() == 20 and alone[16].min() == 20 and alone[0].max() < 5
    # a vertical step of 25 levels (Sobel magnitude 100: between the thresholds 50 and 150), alone
    # and below a step of 225 levels (magnitude 900) in the top three rows
    step = np.zeros((2, 16, 16), np.uint8)
    step[:, :, 8:] = 25
    step[1, :3, 8:] = 225
    edges = canny(step, 50, 150)
    assert not edges[0].any()
    assert edges[1, 4:, 7].all() and edges[1, 4:].sum() == 12  # the weak edge, one pixel wide
    levels = np.array([[3, 3, 7, 7], [7, 9, 200, 200]])
    hist = {3: 2, 7: 3, 9: 1, 200: 2}
    scale = 255 / (8 - hist[3])
    lut = {3: 0, 7: round(3 * scale), 9: round(4 * scale), 200: round(6 * scale)}
    assert equalize_hist(levels).flatten().tolist() == [lut[int(v)] for v in levels.flatten()]


def test_water_spatter_is_opencvs_where_it_is_installed():
    """Canny, the distance transform and the whole water recipe of make_cifar_c.py, bit-equal to
    cv2's on spatter's liquid layers and on noise (OpenCV comes with the test extras)."""
    cv2 = pytest.importorskip("cv2")
    g = torch.Generator().manual_seed(0)
    layers = []
    for sev in (1, 2, 3):
        loc, scale, sigma, _, _, _ = CORRUPTIONS["spatter"].params[sev - 1]
        layers.append(torch.from_numpy(ndimage.gaussian_filter(
            (torch.randn(40, 32, 32, generator=g) * scale + loc).numpy(), (0, sigma, sigma), mode="nearest")))
    liquid, thr, intensity = torch.cat(layers), 0.69, 0.5
    levels = np.uint8(np.clip(np.where(liquid.numpy() < np.float32(thr), 0, liquid.numpy() * np.float32(255)), 0, 255))
    noise = torch.randint(0, 256, (30, 28, 36), generator=g, dtype=torch.uint8).numpy()
    for lv in (levels, noise):
        edges = canny(lv, 50, 150)
        assert np.array_equal(edges, np.stack([cv2.Canny(v, 50, 150) > 0 for v in lv]))
        ref = np.stack([cv2.distanceTransform(255 - 255 * e.astype(np.uint8), cv2.DIST_L2, 5) for e in edges])
        assert np.array_equal(distance_transform(edges, 20), np.minimum(ref, 20))

    def published(lv):
        dist = cv2.distanceTransform(255 - cv2.Canny(lv, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        m = lv * cv2.blur(dist, (3, 3)).astype(np.float32)
        return m / max(m.max(), np.float32(1e-12)) * np.float32(intensity)

    x = torch.rand(len(liquid), 3, 32, 32, generator=g)
    tint = np.array([175, 238, 238], np.float32)[:, None, None] / np.float32(255)
    ref = np.clip(x.numpy() + np.stack([published(v) for v in levels])[:, None] * tint, 0, 1)
    assert np.array_equal(water_spatter(x, liquid, thr, intensity, (175, 238, 238)).numpy(), ref)


def pillow_each(x: torch.Tensor, fn) -> np.ndarray:
    """`fn` on each image of x as an 8-bit Pillow image (grey as mode L), as (N, H, W, C) levels."""
    return np.stack([np.round(pil_roundtrip(hwc(im[None])[..., 0] if len(im) == 1 else hwc(im[None]), fn) * 255)
                     .reshape(*im.shape[1:], -1) for im in x])


def levels_of(y: torch.Tensor) -> np.ndarray:
    return np.round(y.permute(0, 2, 3, 1).double().numpy() * 255)


# jpeg: colour in whole 16-px MCUs, grey padded to whole blocks, colour at 40 px image by image
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (3, 40, 40), (3, 40, 36)])
def test_pixelate_and_jpeg_are_pillows_to_the_bit(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, *shape, generator=g) * 255
    x[:8] = torch.nn.functional.avg_pool2d(x[:8], 5, 1, 2, count_include_pad=False)  # smooth
    x[4:8] = ((x[4:8] - 128) * 4 + 128).clamp(0, 255)  # saturated: the colour conversion clips
    x[10:] = (x[10:] > 128) * 255.0  # black and white: the largest DCT coefficients, the decoder clips
    x = x.round() / 255
    h, w = shape[1:]
    for sev, c in enumerate([0.95, 0.9, 0.85, 0.75, 0.65], 1):
        def pix(im, c=c):
            return im.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX)
        assert np.array_equal(levels_of(run("pixelate", x, sev)), pillow_each(x, pix)), (shape, c)
    for sev, q in enumerate([80, 65, 58, 50, 40], 1):
        def jpeg(im, q=q):
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=q)
            return Image.open(buf)
        assert np.array_equal(levels_of(run("jpeg_compression", x, sev)), pillow_each(x, jpeg)), (shape, q)


def test_spec_label_and_names():
    spec = CorruptionSpec(name="fog", severity=3)
    assert spec.label == "fog@3" and spec.model_dump()["threat"] == "corruption"
    with pytest.raises(ValueError):
        CorruptionSpec(name="fogg", severity=3)
    with pytest.raises(ValueError):
        CorruptionSpec(name="fog", severity=6)
    assert len(CORRUPTIONS) == 19 and sum(c.extra for c in CORRUPTIONS.values()) == 4


# ---- the published files and the evaluation ------------------------------------------------------

def write_c_files(root, images: np.ndarray, labels: np.ndarray, names=("fog",)) -> None:
    """The official layout: <name>.npy with the test set at severities 1..5 stacked, labels.npy."""
    root.mkdir(parents=True)
    for name in names:
        np.save(root / f"{name}.npy", np.concatenate([images + 10 * s for s in range(5)]).astype(np.uint8))
    np.save(root / "labels.npy", np.tile(labels, 5).astype(np.uint8))


def test_npy_loader_reads_the_official_layout(tmp_path, monkeypatch):
    from classwise.data.corrupted import CorruptedFiles, find_corrupted

    n = 6
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    write_c_files(tmp_path / "CIFAR-10-C", images, np.arange(n) % 3, names=("fog", "contrast"))
    monkeypatch.setenv("CLASSWISE_DATA", str(tmp_path))
    assert find_corrupted("cifar10") == tmp_path / "CIFAR-10-C" and find_corrupted("cifar100") is None
    files = CorruptedFiles(find_corrupted("cifar10"))
    assert files.names() == ["contrast", "fog"] and files.per_severity == n
    got = files.images("fog", 3, [1, 4])
    assert got.shape == (2, 32, 32, 3) and got[0, 0, 0, 0] == 1 + 20 and got[1, 5, 5, 2] == 4 + 20
    assert files.labels(5).tolist() == [0, 1, 2, 0, 1, 2]
    with pytest.raises(ClasswiseError, match="in its order"):
        files.check(np.array([0, 1, 2, 0, 1, 0]), (3, 32, 32))


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3)).eval()


def test_evaluation_with_corruption_specs(tmp_path):
    from classwise.corruptions.ops import quantize
    from classwise.data import ClassData
    from classwise.evaluation import evaluate

    x = image(3, 32, n=12)
    labels = torch.arange(12) % 3
    data = ClassData((x * 255).round().to(torch.uint8), labels, ["a", "b", "c"], name="t")
    model = tiny_model()
    specs = [CorruptionSpec(name="gaussian_noise", severity=5), CorruptionSpec(name="contrast", severity=5),
             CorruptionSpec(name="gaussian_noise", severity=2)]
    res = evaluate(model, data, specs, batch_size=4, seed=7, show_progress=False)
    assert res.kind("gaussian_noise@5") == "corruption" and res.robust_keys == []
    with torch.no_grad():  # one chunk: each severity from the seeded generator's first draw
        expect, expect2 = (model(quantize(run("gaussian_noise", x, s, seed=7))).argmax(1).numpy() for s in (5, 2))
    assert np.array_equal(res.adv_pred["gaussian_noise@5"], expect)
    assert np.array_equal(res.adv_pred["gaussian_noise@2"], expect2)
    made = dict(CorruptionPass({s.label: s for s in specs}, 7, "cpu")(x, np.arange(12)))  # what it evaluated
    assert list(made) == ["gaussian_noise@5", "gaussian_noise@2", "contrast@5"]  # a corruption's severities together
    for spec in specs:
        assert torch.equal(made[spec.label], run(spec.name, x, spec.severity, seed=7, quantize=True))
    table = res.per_class("gaussian_noise@5")
    for c in range(3):
        mine = labels.numpy() == c
        assert table.loc[c, "accuracy"] == pytest.approx((expect[mine] == c).mean())
    # from the files: the published images are read by index instead of being made
    n = 12
    images = np.zeros((n, 32, 32, 3), np.uint8)
    images[labels.numpy() == 1] = 200
    write_c_files(tmp_path / "CIFAR-10-C", images, labels.numpy())
    spec = CorruptionSpec(name="fog", severity=2, source="files", files=str(tmp_path / "CIFAR-10-C"))
    res = evaluate(model, data, [spec], batch_size=4, show_progress=False)
    with torch.no_grad():
        read = torch.from_numpy(images + 10).permute(0, 3, 1, 2).float() / 255
        assert np.array_equal(res.adv_pred["fog@2"], model(read).argmax(1).numpy())
    with pytest.raises(ClasswiseError, match="in its order"):
        evaluate(model, data.subset(range(6)), [spec], show_progress=False)


def _result(acc: dict[str, list[float]], n: int = 10):
    """An EvalResult whose key k gets per-class accuracies acc[k] (first round(a n) images right)."""
    from classwise.evaluation import EvalResult

    k = len(next(iter(acc.values())))
    labels = np.repeat(np.arange(k), n)

    def preds(accs):
        p = labels.copy()
        for c, a in enumerate(accs):
            wrong = np.flatnonzero(labels == c)[round(a * n):]
            p[wrong] = (c + 1) % k
        return p

    attacks = {key: ({"name": "pgd", "eps": 0.1} if key == "pgd20" else
                     {"threat": "corruption", "name": key.split("@")[0], "severity": int(key.split("@")[1])})
               for key in acc if key != "clean"}
    return EvalResult([f"c{i}" for i in range(k)], labels, preds(acc["clean"]),
                      {key: preds(v) for key, v in acc.items() if key != "clean"}, attacks)


def test_corruption_summary_and_answers(tmp_path):
    from scipy.stats import spearmanr

    from classwise.analysis.corruption import class_table, summary
    from classwise.report.corruption import answers, corruption_section

    std = _result({"clean": [1, 1, .8, 1], "pgd20": [.1, .4, .2, .3], "fog@1": [.5, .6, .7, .8],
                   "fog@2": [.3, .4, .5, .6], "contrast@1": [.9, .9, .9, .9], "contrast@2": [.7, .7, .7, .7]})
    table = class_table(std)
    assert list(table.columns) == ["clean", "fog", "contrast", "mean"]
    assert table.loc["c0", "fog"] == pytest.approx(0.4) and table.loc["c0", "mean"] == pytest.approx(0.6)
    s = summary(std, "pgd20")
    mean = np.array([(0.4 + 0.8) / 2, (0.5 + 0.8) / 2, (0.6 + 0.8) / 2, (0.7 + 0.8) / 2])
    rho, p = spearmanr(1 - mean, 1 - np.array([.1, .4, .2, .3]))
    assert s["spearman"] == pytest.approx(rho) and s["p_value"] == pytest.approx(p)
    assert s["worst_class"] == "c0" and s["relative"]["c2"] == pytest.approx(0.7 / 0.8)
    assert s["overall"] == pytest.approx(np.mean([0.65, 0.45, 0.9, 0.7]))
    adv = _result({"clean": [.8, .8, .8, .8], "pgd20": [.5, .5, .4, .6], "fog@1": [.7, .7, .3, .7],
                   "fog@2": [.7, .7, .3, .7], "contrast@1": [.8, .8, .8, .8], "contrast@2": [.8, .8, .8, .8]})
    lines = answers({"standard": s, "fgsm-rs": summary(adv, "pgd20")})
    assert "Spearman rho" in lines[0] and "'c0' -> 'c2': adversarial training MOVES" in lines[2]
    lines, figs, _ = corruption_section(tmp_path, {"standard": std, "fgsm-rs": std}, "pgd20")
    assert "does not move" in lines[2] and figs["corruption_standard"].is_file()
    assert (tmp_path / "corruption_per_class.csv").is_file()


def test_evaluate_cli_prints_per_class_hardest_corruption_and_writes_csv_and_heatmap(tmp_path, capsys):
    import json

    import pandas as pd

    from classwise.analysis.corruption import class_table
    from classwise.cli import main
    from classwise.data import load_dataset
    from classwise.evaluation import EvalResult
    from classwise.models import create_model

    torch.manual_seed(0)
    model, train = create_model("mnist-cnn", 10, 1, 28), load_dataset("synthetic").train
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for i in range(0, 640, 64):  # ten steps: classes apart, not yet all right
        loss = torch.nn.functional.cross_entropy(model(train.images[i:i + 64].float() / 255), train.labels[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", "synthetic", "--arch", "mnist-cnn", "--checkpoint", str(tmp_path / "m.pt"),
                 "--attack", "fgsm", "--limit", "100", "--no-sanity", "--quiet", "--corruptions", "contrast",
                 "fog", "impulse_noise", "--severities", "1,5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split("under 3 corruptions")[1]
    res = EvalResult.from_dict(json.loads((out / "eval.json").read_text()))
    grid = class_table(res)
    each = grid.drop(columns=["clean", "mean"])
    assert each.min(axis=1).nunique() > 3  # the classes differ: a wrong column would show
    for cls, row in each.iterrows():  # the table's hardest corruption of every class, at its accuracy
        line = next(ln for ln in printed.splitlines() if ln.startswith(f"│ {cls} "))
        assert f"{row.idxmin()} {row.min() * 100:.1f}" in line, line
    costliest = each.mean().sort_values(kind="stable").index  # equal class counts: the mean over classes
    listing = printed.split("costliest first: ")[1].splitlines()[0]
    assert [p.split()[0] for p in listing.split(", ")] == list(costliest)
    long = pd.read_csv(out / "corruption_per_class.csv")
    assert len(long) == 10 * 3 * 2 and set(long["severity"]) == {1, 5}
    fog5 = long[(long.corruption == "fog") & (long.severity == 5)].set_index("class")["accuracy"]
    assert fog5.to_dict() == pytest.approx(res.per_class("fog@5").set_index("class")["accuracy"].to_dict())
    assert (out / "figures" / "corruption_mnist-cnn.png").read_bytes()[:4] == b"\x89PNG"


def test_study_with_corruptions_answers_and_reports_per_arm(tmp_path):
    import json

    import pandas as pd

    from classwise.cli import main

    out = tmp_path / "study"
    assert main(["study", "--dataset", "synthetic", "--preset", "smoke", "--out", str(out), "--quiet", "--no-figures",
                 "--no-sanity", "--epochs", "1", "--train-limit", "300", "--eval-steps", "1", "--test-steps", "2",
                 "--test-limit", "100", "--corruptions", "contrast", "fog", "--severities", "1,5"]) == 0
    results = json.loads((out / "results.json").read_text())
    corr = results["corruptions"]
    assert list(corr) == ["standard", "fgsm-rs"] and all(s["corruptions"] == ["contrast", "fog"] for s in corr.values())
    answers = [a for a in results["answers"] if "Spearman" in a or "under corruption" in a]
    assert len(answers) == 3 and "Weakest class under corruption, standard -> fgsm-rs" in answers[2]
    long = pd.read_csv(out / "corruption_per_class.csv")
    assert len(long) == 2 * 10 * 2 * 2 and set(long["arm"]) == {"standard", "fgsm-rs"}
    for arm, s in corr.items():  # the per-class means are the long table's, over corruptions and severities
        mean = long[long.arm == arm].groupby("class", sort=False)["accuracy"].mean()
        assert mean.to_dict() == pytest.approx(s["per_class"])
    report = (out / "report.html").read_text()
    # the per-corruption table: costliest for the first arm first, each arm's mean in points
    first, adv = corr["standard"]["per_corruption"], corr["fgsm-rs"]["per_corruption"]
    rows = re.findall(r"<tr>\s*<td>(contrast|fog)</td>\s*<td>([\d.]+)</td>\s*<td>([\d.]+)</td>\s*</tr>", report)
    assert [r[0] for r in rows] == sorted(first, key=first.get)
    assert [float(v) for r in rows for v in r[1:]] == pytest.approx(
        [v * 100 for r in rows for v in (first[r[0]], adv[r[0]])], abs=0.051)
