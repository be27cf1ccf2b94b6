"""`classwise models`: the architectures in the registry."""

from __future__ import annotations

ORDER = 70


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="the architectures in the registry")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from ..models import MODELS, count_parameters, create_model
    from ..report.table import console

    table = Table(title="Architectures (parameters for 10 classes at the reference input)", title_justify="left")
    for col in ("name", "input", "parameters", "published", "description"):
        table.add_column(col, justify="right" if col in ("parameters", "published") else "left")
    for name, entry in sorted(MODELS.items()):
        c, h, _ = entry.reference_shape
        n = count_parameters(create_model(name, 10, c, h).net)
        table.add_row(name, f"{c}x{h}x{h}", f"{n / 1e6:.3f} M", entry.published_params or "-", entry.description)
    console.print(table)
    console.print("Also: tv:<name> for any torchvision classification model with ImageNet normalization "
                  "(e.g. tv:resnet50), to load and audit a weights file.")
    return 0
