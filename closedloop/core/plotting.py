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


# One colour per model version in every figure: versions in release order take matplotlib's
# default cycle, so the first two match the comparison's baseline and candidate colours.
VERSION_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
ALL_VERSIONS_COLOUR = "#222222"


def version_colours(versions: list[str]) -> dict[str, str]:
    """Colour of each version (given in release order); ``all`` (the pooled line) is near-black."""
    colours = {version: VERSION_PALETTE[i % len(VERSION_PALETTE)] for i, version in enumerate(versions)}
    colours["all"] = ALL_VERSIONS_COLOUR
    return colours


def no_data(axes, message: str) -> None:
    """Say in the axes why nothing is drawn, instead of leaving them empty."""
    axes.text(
        0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="#666666", fontsize=10, wrap=True
    )
    axes.set_xticks([])
    axes.set_yticks([])


def percent_axis(axis, decimals: int | None = None) -> None:
    """Percent ticks at round steps on ``axis`` (``axes.yaxis`` or ``axes.xaxis``) of shares in [0, 1]."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=decimals))
