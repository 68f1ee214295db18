"""What a reader would see wrong in a drawn figure, found from the artists' window extents after layout:
text or legends cut off at the figure's edge, texts on top of each other (tick labels closer than half an
em), a figure legend or title lying on a panel, and curves that draw nothing (one point, no marker)."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

TOLERANCE_PX = 1.0  # anti-aliasing and rounding: a glyph may touch the edge by a pixel
MIN_GAP_EM = 0.5  # tick labels closer than half their font size read as one number ("0.0001000.000125")


def layout_problems(fig: Figure) -> list[str]:
    """Every problem found, one line each (empty when the figure reads cleanly)."""
    canvas = FigureCanvasAgg(fig)  # the backend `style.save` writes PNGs with
    fig.draw_without_rendering()  # runs constrained layout: extents are final
    renderer = canvas.get_renderer()
    problems = []
    boxes = [(name, artist, artist.get_window_extent(renderer)) for name, artist in _texts_and_legends(fig)]
    boxes = [(name, artist, box) for name, artist, box in boxes if box.width > 0 and box.height > 0]
    for name, _, box in boxes:
        if not _inside(box, fig.bbox):
            problems.append(f"{name} is cut off: {_fmt(box)} outside the figure {_fmt(fig.bbox)}")
    # Tick labels of one axis keep MIN_GAP_EM apart: compare them padded by half of it on each side; any
    # other two texts must only not overlap.
    padded = [box.padded(MIN_GAP_EM / 2 * artist.get_size() * fig.dpi / 72) if _tick_axis(artist) else box
              for _, artist, box in boxes]
    for i, (name_a, a, box_a) in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            name_b, b, box_b = boxes[j]
            same_axis = _tick_axis(a) is not None and _tick_axis(a) is _tick_axis(b)
            if _overlap(padded[i], padded[j]) if same_axis else _overlap(box_a, box_b):
                problems.append(f"{name_a} and {name_b} run into each other")
    top_level = [("figure legend", lg) for lg in fig.legends] + [("title", fig._suptitle)] * bool(fig._suptitle)
    for name, artist in top_level:
        box = artist.get_window_extent(renderer)
        for ax in _visible_axes(fig):
            if _overlap(box, ax.get_tightbbox(renderer)):
                problems.append(f"{name} lies on the panel {_title(ax)}")
    return problems


def invisible_lines(fig: Figure) -> list[str]:
    """Lines with a single point and no marker: plotted, but nothing shows."""
    out = []
    for ax in _visible_axes(fig):
        for line in ax.get_lines():
            if len(line.get_xdata()) < 2 and line.get_marker() in (None, "", " ", "None", "none"):
                out.append(f"{_title(ax)}: {line.get_gid() or line.get_label()} draws nothing")
    return out


def _tick_axis(artist):
    return getattr(artist, "_tick_axis", None)


def _texts_and_legends(fig: Figure):
    if fig._suptitle is not None:
        yield "title", fig._suptitle
    for legend in fig.legends:
        yield "figure legend", legend
    for text in fig.texts:
        if text is not fig._suptitle:
            yield "figure text", text
    for ax in _visible_axes(fig):
        where = _title(ax)
        for name, text in (("title", ax.title), ("left title", ax._left_title), ("right title", ax._right_title),
                           ("x label", ax.xaxis.label), ("y label", ax.yaxis.label),
                           ("x offset", ax.xaxis.get_offset_text()), ("y offset", ax.yaxis.get_offset_text())):
            yield f"{where}: {name}", text
        for text in ax.texts:
            yield f"{where}: text {text.get_text()!r}", text
        if ax.get_legend() is not None:
            yield f"{where}: legend", ax.get_legend()
        for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for label in _drawn_tick_labels(axis):
                label._tick_axis = axis  # marks labels of one axis for `_min_gap`
                yield f"{where}: {axis_name} tick label {label.get_text()!r}", label


def _drawn_tick_labels(axis) -> list:
    """The tick labels a draw shows: visible, not empty, at a tick inside the view limits (matplotlib keeps
    labels of ticks beyond the limits around, undrawn)."""
    lo, hi = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return [t.label1 for t in ticks if lo - slack <= t.get_loc() <= hi + slack
            and t.label1.get_visible() and t.label1.get_text().strip()]


def _visible_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_visible()]


def _title(ax) -> str:
    return repr(ax.get_title() or ax.get_xlabel() or "panel")


def _inside(box: Bbox, outer: Bbox) -> bool:
    return (box.x0 >= outer.x0 - TOLERANCE_PX and box.y0 >= outer.y0 - TOLERANCE_PX
            and box.x1 <= outer.x1 + TOLERANCE_PX and box.y1 <= outer.y1 + TOLERANCE_PX)


def _overlap(a: Bbox, b: Bbox) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE_PX) and (min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE_PX)


def _fmt(box: Bbox) -> str:
    return f"[{box.x0:.0f}, {box.y0:.0f}, {box.x1:.0f}, {box.y1:.0f}] px"
