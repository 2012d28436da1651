"""Point labels that never overlap: each label takes the nearest free spot, with a leader line when moved (lab 02).

A small stand-in for adjustText (not a dependency): labels are placed greedily, in order, in display points.
"""

from __future__ import annotations


def _box(x, y, w, h):
    return (x, y, x + w, y + h)


def _overlaps(a, b, pad=1.5):
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def place_labels(ax, xs, ys, texts, *, fontsize: float = 8, radii_pt=None) -> list:
    """Annotate the points ``(xs[i], ys[i])`` with ``texts[i]`` so that no two labels overlap; returns the Texts.

    Each label tries spots next to its point (right, below-right, left, ...), then spots further up and down
    with a leader line to its point; it avoids the labels already placed, the markers (``radii_pt``: each
    point's marker radius in points) and the edges of the axes. Call it after the axis limits are final.

    >>> import matplotlib.pyplot as plt
    >>> _, ax = plt.subplots()
    >>> _ = ax.set(xlim=(0, 10), ylim=(0, 10))
    >>> texts = place_labels(ax, [5, 5.01, 5.02], [5, 5, 5], ["int8 static", "int8 static QDQ", "int8 dynamic"])
    >>> len({t.xyann for t in texts})          # three labels of (almost) one point: three different places
    3
    """
    fig = ax.figure
    fig.canvas.draw()                            # final layout: the data -> display transform is settled
    to_pt = 72.0 / fig.dpi
    frame = ax.get_window_extent()
    bounds = (frame.x0 * to_pt, frame.y0 * to_pt, frame.x1 * to_pt, frame.y1 * to_pt)
    pts = [tuple(v * to_pt for v in ax.transData.transform((x, y))) for x, y in zip(xs, ys)]
    radii = list(radii_pt) if radii_pt is not None else [3.0] * len(pts)
    markers = [_box(px - r, py - r, 2 * r, 2 * r) for (px, py), r in zip(pts, radii)]
    from matplotlib.font_manager import FontProperties

    renderer, font = fig.canvas.get_renderer(), FontProperties(size=fontsize)
    height = 1.25 * fontsize
    step = height + 2
    placed, out = [], []
    for i, ((px, py), text) in enumerate(zip(pts, texts)):
        width = renderer.get_text_width_height_descent(text, font, ismath=False)[0] * to_pt + 1
        r = radii[i]
        right, left, centre = px + r + 3, px - r - 3 - width, px - width / 2
        near = [(right, py - height / 2), (right, py + 2), (right, py - height - 2), (left, py - height / 2),
                (left, py + 2), (left, py - height - 2), (centre, py + r + 2), (centre, py - r - height - 2)]
        far = [(x0, py - height / 2 + sign * step * k) for k in range(1, 16) for sign in (1, -1)
               for x0 in (right + 6, left - 6)]
        far.sort(key=lambda c: abs(c[1] - py) + 0.5 * abs(c[0] - px))
        choice, moved = None, False
        for k, (x0, y0) in enumerate(near + far):
            box = _box(x0, y0, width, height)
            inside = (box[0] >= bounds[0] + 2 and box[2] <= bounds[2] - 2 and box[1] >= bounds[1] + 2
                      and box[3] <= bounds[3] - 2)
            if inside and not any(_overlaps(box, b) for b in placed) and not any(
                    _overlaps(box, m, pad=2.5) for j, m in enumerate(markers) if j != i):
                choice, moved = (x0, y0), k >= len(near)
                break
        if choice is None:                       # nowhere free: stack above the others, still readable
            choice, moved = (px + r + 7, max([b[3] for b in placed] + [py]) + 2), True
        placed.append(_box(*choice, width, height))
        offset = (choice[0] - px, choice[1] - py)
        arrow = dict(arrowstyle="-", color="0.4", lw=0.7, shrinkA=0, shrinkB=r) if moved else None
        out.append(ax.annotate(text, (xs[i], ys[i]), textcoords="offset points", xytext=offset, fontsize=fontsize,
                               ha="left", va="bottom", arrowprops=arrow, zorder=5))
    return out
