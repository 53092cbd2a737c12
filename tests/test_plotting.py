"""Figures render to PNG without a display."""

from closedloop.core.plotting import new_figure, to_png


def test_a_figure_renders_to_png_bytes():
    figure, axes = new_figure()
    axes.plot([0, 1], [1, 0])
    data = to_png(figure)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
