"""Float images in the data layer, and Ilyas et al.'s constructed data sets: D_R brings the
representation of its images to the target's, det relabels, builds resume, and the result
is a data set that training reads as `features:DIR`."""

import numpy as np
import pytest
import torch

from classwise.analysis.features import FeatureParams, build, match_representation, representation
from classwise.data import ClassData, batches, load_dataset, to_float
from classwise.data.constructed import chunk_path, read_constructed
from classwise.errors import ClasswiseError, CorruptDataError


def _tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)).eval()


def _digits(n=60):
    test = load_dataset("digits").test
    return test.subset(np.arange(n))


def test_float_images_are_carried_without_quantising():
    x = torch.rand(6, 1, 4, 4) * 0.5 + 0.25 + 1e-4  # off the 1/255 grid
    data = ClassData(x.clone(), torch.arange(6) % 3, ["a", "b", "c"])
    got = torch.cat([b for b, _ in batches(data, 4)])
    assert torch.equal(got, x)
    batch = to_float(data.images[:2])
    batch.mul_(0)  # an in-place step on a batch must not reach the data set
    assert torch.equal(data.images, x)
    mean, _ = data.channel_stats()
    assert mean[0] == pytest.approx(float(x.mean()), abs=1e-6)
    assert torch.equal(data.images, x)  # computing statistics did not scale the images
    with pytest.raises(CorruptDataError, match=r"\[0, 1\]"):
        ClassData(x * 3, torch.arange(6) % 3, ["a", "b", "c"])


def test_representation_matching_reaches_the_target_representation():
    model = _tiny_model()
    data = _digits(20)
    x = to_float(data.images)
    target = representation(model, x).detach()
    start = x.roll(1, 0)  # each image starts from another one
    before = ((representation(model, start) - target).norm(dim=1) / target.norm(dim=1)).detach()
    matched, dist = match_representation(model, start, target, steps=100, step_size=0.05)
    assert float(before.median()) > 0.2
    # stated tolerance: the median image is within 5% of its target's representation
    assert float(dist.median()) < 0.05
    assert float(dist.median()) < float(before.median()) / 5
    assert matched.min() >= 0 and matched.max() <= 1
    check = (representation(model, matched) - target).norm(dim=1) / target.norm(dim=1)
    np.testing.assert_allclose(check.detach().numpy(), dist.numpy(), atol=1e-5)


def test_build_resumes_and_reads_as_a_data_set(tmp_path):
    model = _tiny_model()
    data = _digits(45)
    out = tmp_path / "dr"
    params = FeatureParams(steps=10, step_size=0.05)
    source = {"checkpoint": "tiny", "dataset": "digits", "data_dir": None}
    meta = build(model, data, "robust", out, params=params, source=source, chunk=20, batch_size=16)
    assert meta["complete"] and meta["n_chunks"] == 3
    first = read_constructed(out)
    assert first.images.dtype == torch.float32 and torch.equal(first.labels, data.labels)
    # a killed build loses only unfinished chunks and redoes them with the same starts
    chunk_path(out, 1).unlink()
    build(model, data, "robust", out, params=params, source=source, chunk=20, batch_size=16)
    again = read_constructed(out)
    torch.testing.assert_close(again.images, first.images)
    with pytest.raises(ClasswiseError, match="different construction"):
        build(model, data, "non-robust", out, params=params, source=source, chunk=20)
    splits = load_dataset(f"features:{out}", val_size=0.2)
    assert splits.train.images.dtype == torch.float32 and len(splits.train) + len(splits.val) == 45
    assert len(splits.test) == len(load_dataset("digits").test)  # tested on the source's test set
    # the images are not multiples of 1/255 (nothing quantised them on the way)
    levels = first.images * 255
    assert (levels - levels.round()).abs().max() > 0.01


def test_det_relabels_to_the_next_class_within_eps(tmp_path):
    model = _tiny_model()
    data = _digits(30)
    meta = build(model, data, "det", tmp_path / "det", params=FeatureParams(10, 0.1, 0.5),
                 source={"checkpoint": "tiny", "dataset": "digits"}, chunk=30)
    got = read_constructed(tmp_path / "det")
    assert torch.equal(got.labels, (data.labels + 1) % 10)
    delta = (got.images - to_float(data.images)).flatten(1).norm(dim=1)
    assert float(delta.max()) <= 0.5 + 1e-4 and float(delta.max()) > 0.1
    assert 0 <= meta["summary"]["reached_target"] <= 1
