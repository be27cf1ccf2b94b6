"""Every corruption's tensor form, the one CUDA and MPS run, against its compiled form on the
CPU: the same images from the same seed, every severity. `ops.CPU_LOOPS = False` makes the CPU
take the tensor forms (in float32, as a GPU runs them)."""

from __future__ import annotations

import pytest
import torch
from test_corruptions import frost_dir, image, kw_for  # noqa: F401 - frost_dir is a fixture

from classwise.corruptions import CORRUPTIONS, ops
from classwise.corruptions.kernels import filters

# corruptions whose CPU path runs compiled loops where CUDA and MPS run tensor ops (the Gaussian
# blurs inside elastic and spatter, motion blur inside snow)
TWO_FORMS = {"motion_blur", "snow", "glass_blur", "gaussian_blur", "shot_noise", "elastic_transform", "spatter"}
# compiled code every device runs (the tensors go to the CPU and back): one form
ONE_COMPILED_FORM = {"defocus_blur", "jpeg_compression", "pixelate"}


def _both(name, x, severity, frost, monkeypatch):
    corruption = CORRUPTIONS[name]
    kw = kw_for(name, frost)
    compiled = corruption(x, severity, torch.Generator().manual_seed(5), **kw)
    with monkeypatch.context() as m:
        m.setattr(ops, "CPU_LOOPS", False)
        tensor = corruption(x, severity, torch.Generator().manual_seed(5), **kw)
    return compiled, tensor


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_tensor_form_agrees_with_the_compiled_cpu_form(name, frost_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(filters, "MIN_PLANES", 0)  # small batches take the compiled blur loop too
    x = image(3, 32, n=6)
    for severity in range(1, 6):
        compiled, tensor = _both(name, x, severity, frost_dir, monkeypatch)
        assert compiled.shape == tensor.shape == x.shape and compiled.dtype == tensor.dtype == x.dtype
        diff = (compiled - tensor).abs()
        if name not in TWO_FORMS:  # one code path on every device: the same bits
            assert torch.equal(compiled, tensor), f"{name} severity {severity}"
        elif name == "glass_blur":
            # float32 sums in another order before its 8-bit store: a value on a level's boundary
            # may store one level apart, then be blurred
            assert diff.max() <= 1.01 / 255 and diff.gt(1e-5).float().mean() < 0.01, f"severity {severity}"
        else:
            assert diff.max() <= 1e-5, f"{name} severity {severity}: max |diff| {diff.max():.3g}"


def test_every_corruption_is_classified():
    """A corruption added later is sorted into one of the two kinds above or none (tensor ops only)."""
    assert set(CORRUPTIONS) >= TWO_FORMS | ONE_COMPILED_FORM
    assert not TWO_FORMS & ONE_COMPILED_FORM


def test_the_switch_changes_the_path_not_just_the_flag(monkeypatch):
    """With the loops off, shot noise and motion blur do not call their compiled functions."""
    from classwise.corruptions import noise

    called = []
    monkeypatch.setattr(noise, "settle", lambda *a: called.append("settle"))
    monkeypatch.setattr(noise, "fill_slices", lambda *a: called.append("slices") or True)
    monkeypatch.setattr(filters, "_motion", lambda *a: called.append("motion"))
    monkeypatch.setattr(ops, "CPU_LOOPS", False)
    x = image(3, 32, n=2)
    CORRUPTIONS["shot_noise"](x, 5, torch.Generator().manual_seed(0))
    CORRUPTIONS["motion_blur"](x, 5, torch.Generator().manual_seed(0))
    assert called == []
