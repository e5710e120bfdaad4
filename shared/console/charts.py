"""Daily series drawn as inline SVG: no image files, no JavaScript.

Each chart has a title, a y axis with its unit, day labels on the x axis and
its legend above the plot area (never over the data). The SVG scales to its
container (`viewBox`, width 100 %), so it fits a phone. Every text is escaped.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 54, 12, 50, 34
COLOURS = ("#1f77b4", "#d95f02", "#2ca02c")


def _frame(title: str, unit: str, y_max: float, legend: list[tuple[str, str]]) -> list[str]:
    plot_height = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="13">',
             f"<title>{escape(title)}</title>",
             f'<text x="{LEFT}" y="16" font-size="15" font-weight="bold">{escape(title)}</text>']
    x = LEFT
    for name, colour in legend:
        parts.append(f'<rect x="{x}" y="26" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="36">{escape(name)}</text>')
        x += 26 + 7.5 * len(name)
    for step in range(5):
        value = y_max * step / 4
        y = TOP + plot_height * (1 - step / 4)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick(value)}</text>')
    parts.append(f'<text transform="translate(14 {TOP + plot_height / 2:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    return parts


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"


def _x_positions(count: int) -> list[float]:
    span = WIDTH - LEFT - RIGHT
    return [LEFT + span * (index + 0.5) / count for index in range(count)]


def _day_labels(days: list[str], positions: list[float]) -> list[str]:
    every = max(1, -(-len(days) // 6))  # at most 6 labels, so they never overlap
    return [f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{escape(day[5:])}</text>'
            for index, (day, x) in enumerate(zip(days, positions)) if index % every == 0]


def _empty(title: str) -> Markup:
    return Markup(f'<p class="empty">{escape(title)}: nothing recorded yet.</p>')


def bar_chart(title: str, days: list[str], values: list[float], unit: str) -> Markup:
    if not days:
        return _empty(title)
    y_max = _nice_max(max(values))
    plot_height = HEIGHT - TOP - BOTTOM
    positions = _x_positions(len(days))
    width = max(2.0, (WIDTH - LEFT - RIGHT) / len(days) * 0.7)
    parts = _frame(title, unit, y_max, [])
    for day, x, value in zip(days, positions, values):
        height = plot_height * value / y_max
        parts.append(f'<rect x="{x - width / 2:.1f}" y="{TOP + plot_height - height:.1f}" width="{width:.1f}" '
                     f'height="{height:.1f}" fill="{COLOURS[0]}"><title>{escape(day)}: {value:g}</title></rect>')
    parts += _day_labels(days, positions)
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(title: str, days: list[str], series: dict[str, dict[str, float]], unit: str,
               y_max: float = 1.0) -> Markup:
    """`series`: name -> {day: value}; a day a series lacks is a gap, not a zero."""
    if not days:
        return _empty(title)
    plot_height = HEIGHT - TOP - BOTTOM
    positions = dict(zip(days, _x_positions(len(days))))
    legend = list(zip(series, COLOURS))
    parts = _frame(title, unit, y_max, legend)
    for (name, values), colour in zip(series.items(), COLOURS):
        points = [(positions[day], TOP + plot_height * (1 - min(values[day], y_max) / y_max))
                  for day in days if values.get(day) is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), day in zip(points, [day for day in days if values.get(day) is not None]):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                         f"<title>{escape(name)} {escape(day)}: {values[day]:.3f}</title></circle>")
    parts += _day_labels(days, list(positions.values()))
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    scale = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * scale:
            return float(step * scale)
    return float(10 * scale)
