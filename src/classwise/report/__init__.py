"""Reports: figures, terminal tables and one self-contained HTML page."""

from .figures import class_figure, confusion_figure, trend_figure
from .html import write_report
from .table import print_lines, print_per_class

__all__ = ["class_figure", "confusion_figure", "print_lines", "print_per_class", "trend_figure",
           "write_report"]
