"""`style.save`: the report's PNG and SVG of a figure, at a path given as the README gives it (a str) or a Path."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from lightrecipe.reports.figures import style


@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "Path"])
def test_save_writes_png_and_svg_at_a_str_or_a_path_stem(tmp_path, as_type):
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    png, svg = style.save(fig, as_type(tmp_path / "comparison"))
    assert (png, svg) == (tmp_path / "comparison.png", tmp_path / "comparison.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and svg.read_text().lstrip().startswith("<?xml")
