"""Charts and the map as inline SVG, drawn on the server: nothing to load from elsewhere, and
the page shows its figures before any script runs."""

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

# Lhasa's prefecture-level city (its districts, counties and parks) spans roughly these degrees.
LHASA_BOUNDS = (29.2, 31.1, 89.7, 92.7)  # south, north, west, east
MIN_SPAN_DEGREES = 0.04


@dataclass
class WeekPoint:
    label: str
    found: int
    closed: int
    on_time_rate: float | None


def _text(x: float, y: float, text: str, cls: str, anchor: str = "middle") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">'
            f"{escape(text)}</text>")


def trend_chart(points: list[WeekPoint], width: int = 960, height: int = 240) -> Markup:
    """Weekly bars of cases found and closed, and the 按时办结率 line on its own 0–100 % axis."""
    left, right, top, bottom = 40, 44, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1, *(max(p.found, p.closed) for p in points)])
    step = _nice_step(peak)
    peak = step * math.ceil(peak / step)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="按周趋势：发现数、办结数与按时办结率">']
    for i in range(0, peak + 1, step):
        y = top + plot_h - plot_h * i / peak
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                     'class="grid"/>')
        parts.append(_text(left - 6, y + 4, str(i), "axis", "end"))
    for share in (0, 50, 100):
        y = top + plot_h - plot_h * share / 100
        parts.append(_text(left + plot_w + 6, y + 4, f"{share}%", "axis rate", "start"))
    slot = plot_w / max(1, len(points))
    bar = max(2.0, slot * 0.32)
    # The rate line breaks at weeks with nothing to rate rather than bridging them.
    runs: list[list[tuple[float, float, WeekPoint]]] = [[]]
    for i, p in enumerate(points):
        x0 = left + slot * i + slot / 2
        for offset, value, cls, name in ((-bar, p.found, "bar-found", "发现"),
                                         (0, p.closed, "bar-closed", "办结")):
            h = plot_h * value / peak
            parts.append(f'<rect x="{x0 + offset:.1f}" y="{top + plot_h - h:.1f}" '
                         f'width="{bar:.1f}" height="{h:.1f}" class="{cls}">'
                         f"<title>{escape(p.label)} {name} {value}</title></rect>")
        if p.on_time_rate is None:
            runs.append([])
        else:
            runs[-1].append((x0, top + plot_h - plot_h * p.on_time_rate, p))
        parts.append(_text(x0, height - bottom + 16, p.label, "axis"))
    for run in runs:
        if len(run) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
                            for i, (x, y, _) in enumerate(run))
            parts.append(f'<path d="{path}" class="rate-line"/>')
        for x, y, p in run:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" class="rate-dot">'
                         f"<title>{escape(p.label)} 按时办结率 {p.on_time_rate:.1%}</title>"
                         "</circle>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return 10 ** len(str(peak))


@dataclass
class MapPoint:
    case_id: str
    lat: float
    lng: float
    label: str
    overdue: bool
    href: str


def in_lhasa(lat: float, lng: float) -> bool:
    south, north, west, east = LHASA_BOUNDS
    return south <= lat <= north and west <= lng <= east


def case_map(points: list[MapPoint], width: int = 900, height: int = 560) -> Markup:
    """The points on an equirectangular view fitted to them (within Lhasa), with a graticule;
    a degree of longitude is drawn cos(latitude) as wide as one of latitude."""
    south = min(p.lat for p in points)
    north = max(p.lat for p in points)
    west = min(p.lng for p in points)
    east = max(p.lng for p in points)
    mid_lat = (south + north) / 2
    squeeze = math.cos(math.radians(mid_lat))
    lat_span = max(north - south, MIN_SPAN_DEGREES) * 1.15
    lng_span = max((east - west) * squeeze, MIN_SPAN_DEGREES) * 1.15
    # Keep the view's shape that of the picture, widening whichever span falls short.
    pad = 30
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    if lng_span / lat_span < inner_w / inner_h:
        lng_span = lat_span * inner_w / inner_h
    else:
        lat_span = lng_span * inner_h / inner_w
    centre_lat, centre_lng = mid_lat, (west + east) / 2

    def xy(lat: float, lng: float) -> tuple[float, float]:
        x = pad + inner_w / 2 + (lng - centre_lng) * squeeze / lng_span * inner_w
        y = pad + inner_h / 2 - (lat - centre_lat) / lat_span * inner_h
        return x, y

    parts = [f'<svg class="map" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="在办案件分布图">',
             f'<rect x="0" y="0" width="{width}" height="{height}" class="map-bg"/>']
    lat_step = _degree_step(lat_span)
    lng_step = _degree_step(lng_span / squeeze)
    lat = math.floor((centre_lat - lat_span) / lat_step) * lat_step
    while lat <= centre_lat + lat_span:
        _, y = xy(lat, centre_lng)
        if pad <= y <= height - pad:
            parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" '
                         'class="graticule"/>')
            parts.append(_text(pad + 2, y - 3, f"{lat:.2f}°N", "axis", "start"))
        lat += lat_step
    lng = math.floor((centre_lng - lng_span / squeeze) / lng_step) * lng_step
    while lng <= centre_lng + lng_span / squeeze:
        x, _ = xy(centre_lat, lng)
        if pad <= x <= width - pad:
            parts.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{height - pad}" '
                         'class="graticule"/>')
            parts.append(_text(x, height - pad + 14, f"{lng:.2f}°E", "axis"))
        lng += lng_step
    for p in sorted(points, key=lambda p: p.overdue):  # the overdue ones on top
        x, y = xy(p.lat, p.lng)
        cls = "pin overdue" if p.overdue else "pin"
        parts.append(f'<a href="{escape(p.href)}" class="pin-link" data-case-id="'
                     f'{escape(p.case_id)}"><circle cx="{x:.1f}" cy="{y:.1f}" r="7" '
                     f'class="{cls}"><title>{escape(p.label)}</title></circle></a>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _degree_step(span: float) -> float:
    for step in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        if span / step <= 6:
            return step
    return 1.0
