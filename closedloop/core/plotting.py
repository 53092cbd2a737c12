"""Figures as PNG bytes, drawn off-screen, in one consistent style for reports and the Dagster UI."""

import io
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

STYLE = {
    "figure.figsize": (9, 4.5),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
}


def new_figure(rows: int = 1, cols: int = 1, **kwargs):
    """A figure and its axes in the house style."""
    with plt.rc_context(cast(Any, STYLE)):  # the stubs want literal rc keys; STYLE's are matplotlib's own
        return plt.subplots(rows, cols, **kwargs)


def to_png(figure) -> bytes:
    """Render and close ``figure``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
