"""The model an evaluation reads, from one of its sources: a registry architecture with its
checkpoint, or your own factory (with or without weights); a RobustBench zoo model comes from
`classwise.zoo.names.load_model`. Whatever the source, the model takes [0, 1] images;
`mean`/`std` (per-channel values, or `imagenet` / `cifar10`) put the normalisation the model
expects in front of it, or replace the one a registry checkpoint carries. The messages name
`classwise evaluate`'s options, which are the same names as the keywords here."""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from ..errors import ClasswiseError


class EvaluationModel(NamedTuple):
    model: nn.Module
    name: str  # the architecture, the factory's target, or the zoo name
    checkpoint_format: str  # what the weights came as: e.g. state_dict, "no" (none)


def evaluation_model(test, *, arch: str | None = None, factory: str | None = None, checkpoint=None,
                     mean: str | None = None, std: str | None = None, train=None) -> EvaluationModel:
    """The model to evaluate on `test` (a `ClassData`: its shape and classes size the model):
    `factory` (`package.module:factory` or `path/to/file.py:factory`, with weights from
    `checkpoint` if given), else the registry architecture `arch` (read from the checkpoint
    when it says) with `checkpoint`. A registry model normalises with `train`'s channel
    statistics unless the checkpoint brings its own normaliser; `mean`/`std` win over both."""
    from .checkpoint import load_weights, read_weights_file
    from .custom import build_custom_model, check_output_width, load_custom_weights, normalization, wrap_normalization
    from .registry import create_model

    c, h, _ = test.shape
    stats = normalization(mean, std, c)
    if factory:
        if arch:
            raise ClasswiseError("give --arch (a registry architecture) or --model (your own factory), not both")
        model = build_custom_model(factory, test.num_classes)
        fmt = "no"
        if checkpoint is not None:
            load_custom_weights(model, checkpoint)
            fmt = "state_dict"
        model = wrap_normalization(model, *stats) if stats else model
        check_output_width(model, test.shape, test.num_classes)
        return EvaluationModel(model, factory, fmt)
    if checkpoint is None:
        raise ClasswiseError("--checkpoint is needed with a registry architecture "
                             "(or use --model package.module:factory)")
    raw = read_weights_file(checkpoint)
    arch = arch or (raw.get("arch") if isinstance(raw, dict) else None)
    if arch is None:
        raise ClasswiseError("--arch is needed: the checkpoint does not say which architecture it holds")
    # the data's own statistics unless the file brings its normalizer (or the model is tv:*)
    data_mean, data_std = train.channel_stats() if train is not None else (None, None)
    head = raw.get("head") if isinstance(raw, dict) else None  # the output layer the checkpoint was trained with
    model = create_model(arch, test.num_classes, c, h, mean=data_mean, std=data_std, head=head)
    fmt = load_weights(model, checkpoint, raw)
    if stats:  # what the user says wins over what the file carries
        model.mean.copy_(model.mean.new_tensor(stats[0]).view_as(model.mean))
        model.std.copy_(model.std.new_tensor(stats[1]).view_as(model.std))
    return EvaluationModel(model, arch, fmt)
