"""The session report as one self-contained HTML page, for anyone to open.

Built from the same :class:`~assistant.storage.report.Report` as the Markdown, so both
always say the same. The page is one file that needs nothing else: no script, no font,
image or style sheet from elsewhere (a Content-Security-Policy in the page forbids them
as well, so a browser would refuse them even if one slipped in), its style inline, its
chart an inline SVG. It reads on a phone (a viewport and a layout that narrows), on a
laptop, and prints on A4 (``@media print``).

Every text that comes from the record (notes, names, the method's id) is escaped with
:func:`html.escape` after its control characters are made visible: records on disk are
hostile, and a note must never become markup in someone's browser.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

from assistant.storage.report import Note, Report, clock, printable, signed_clock

_DASH = "–"

# The chart's geometry, in the SVG's own units (it scales to the page's width).
_WIDTH = 640
_LEFT = 8
_RIGHT_TEXT = 84
"""Room at the right of the bars for the times written after them."""
_BAR = 13
_ROW = 58
"""Height of one phase: its label, the planned bar and the actual bar."""
_TOP = 34
"""Room above the first phase for the legend."""
_AXIS = 34

_COLOURS = {"planned": "#c3ceda", "actual": "#2f6db5", "overtime": "#d2452f", "paused": "#6b6b6b"}

_STYLE = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;color:#1b1b1b;
background:#fff;margin:0 auto;max-width:46rem;padding:1rem 1.1rem 2rem;overflow-wrap:anywhere}
h1{font-size:1.6rem;line-height:1.25;margin:.4rem 0 1rem}
h2{font-size:1.2rem;margin:1.8rem 0 .6rem;border-bottom:1px solid #ccd3dc;padding-bottom:.2rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0 0 .8rem}
dt{font-weight:600}
dd{margin:0}
dd,td,li,blockquote{unicode-bidi:isolate}
figure{margin:0 0 1rem}
figcaption{font-weight:600;margin-bottom:.3rem}
svg{width:100%;height:auto;display:block}
.wide{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #dde3ea;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}
tfoot td{font-weight:700;border-top:2px solid #8a96a3}
blockquote{margin:0;padding:.5rem .9rem;border-left:4px solid #2f6db5;background:#f2f6fa;font-size:1.05rem}
.small{color:#4a4a4a;font-size:.9rem}
ul{padding-left:1.3rem;margin:.3rem 0}
li{margin:.15rem 0}
footer{margin-top:2rem;color:#4a4a4a;font-size:.85rem;border-top:1px solid #ccd3dc;padding-top:.6rem}
@media (max-width:30rem){body{padding:.6rem .7rem 1.5rem;font-size:15px}th,td{padding:.25rem .3rem}
dl{grid-template-columns:1fr}dd{margin-bottom:.3rem}}
@media print{@page{size:A4;margin:16mm 15mm}body{max-width:none;padding:0;font-size:10.5pt}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-after:avoid}
figure,tr,blockquote,li{break-inside:avoid}.wide{overflow:visible}}
"""

_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
"""Nothing may be loaded and nothing may run: the page stands alone."""


def _text(value: Any) -> str:
    """A text from the record (or a locale), safe to put into the page anywhere."""
    return html.escape(printable(str(value)), quote=True)


def html_page(report: Report) -> str:
    """The report as one self-contained HTML page."""
    words = report.phrases.table("report")
    extra = report.phrases.table("html")
    title = words["title"].format(method=report.method_name)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_text(report.phrases.language)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_text(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_text(title)}</h1>",
        *_facts(report, words),
        f"<h2>{_text(words['time'])}</h2>",
        chart(report),
        *_time_table(report, words),
    ]
    marked = False
    for head in report.notes():
        parts.append(f'<section id="{_text(head.key)}">')
        parts.append(f"<h2>{_text(head.heading)}</h2>")
        body = _list(report, words, report.items(head.key)) if head.running else _single(report, words, *report.single(head.key))
        parts += body
        parts.append("</section>")
        marked = marked or any(_UNSURE in line for line in body)
    parts.append("</main>")
    parts.append("<footer>")
    if marked:
        percent = f"{report.low_confidence * 100:g}"
        parts.append(f"<p>{_text(words['unsure'].format(percent=percent))}</p>")
    parts.append(f"<p>{_text(extra['private'])}</p>")
    parts += ["</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)


_UNSURE = html.escape("(?)")


def _facts(report: Report, words: dict[str, str]) -> list[str]:
    r = report.record
    participants = r.get("participants") or 0
    language = str(r.get("language", report.phrases.language))
    rows = [
        (words["date"], report._when()),  # the Markdown's own wording of the date and times
        (words["method"], report.method_name),
        (words["language"], words.get(f"language_{language}", language)),
        (words["participants"], participants if participants else words["not_counted"]),
    ]
    out = ["<dl>"]
    out += [f"<dt>{_text(name)}</dt><dd>{_text(value)}</dd>" for name, value in rows]
    out.append("</dl>")
    out.append(f"<p>{_text(words['finished'] if r.get('finished') else words['unfinished'])}</p>")
    return out


def _time_table(report: Report, words: dict[str, str]) -> list[str]:
    """The Markdown's time table: each total is the sum of the whole seconds above it."""
    heads = [words[k] for k in ("phase", "planned", "actual", "difference", "paused")]
    head = "".join(f'<th scope="col">{_text(h)}</th>' for h in heads)
    out = ['<div class="wide"><table>', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    phases, not_reached = report.phases(), report.phases_not_reached()
    for p in phases:
        planned = report.planned_cell(p)
        cells = [
            f"{p['number']}. {printable(str(p['name']))}",
            planned,
            clock(p["actual_seconds"]),
            signed_clock(p["difference_seconds"]),
            clock(p["paused_seconds"]) if p["paused_seconds"] >= 0.5 else _DASH,
        ]
        out.append(_row(cells))
    for p in not_reached:
        name = f"{p['number']}. {printable(str(p['name']))}"
        out.append(_row([name, clock(p["planned_seconds"]), words["not_reached"], "", ""]))
    out.append("</tbody>")
    planned_total = sum(_whole(p["planned_seconds"]) for p in [*phases, *not_reached])
    actual_total = sum(_whole(p["actual_seconds"]) for p in phases)
    difference_total = sum(_whole(p["difference_seconds"]) for p in phases)
    paused_total = sum(_whole(p["paused_seconds"]) for p in phases if p["paused_seconds"] >= 0.5)
    totals = [
        words["total"],
        clock(planned_total),
        clock(actual_total),
        signed_clock(difference_total) if difference_total else _DASH,
        clock(paused_total) if paused_total else _DASH,
    ]
    out += ["<tfoot>", _row(totals), "</tfoot>", "</table></div>"]
    out.append(f'<p class="small">{_text(words["time_note"])}</p>')
    if report.fitted_note():
        out.append(f'<p class="small">{_text(report.fitted_note())}</p>')
    return out


def _whole(seconds: float) -> int:
    return int(round(max(0.0, seconds))) if seconds >= 0 else -int(round(-seconds))


def _row(cells: list[Any]) -> str:
    return "<tr>" + "".join(f"<td>{_text(c)}</td>" for c in cells) + "</tr>"


def _single(report: Report, words: dict[str, str], note: Note | None, earlier: list[Note]) -> list[str]:
    if note is None:
        return [f"<p>{_text(words['nothing'])}</p>"]
    out = [f"<blockquote>{_marked(report, note)}</blockquote>"]
    if not note.accepted:
        out.append(f'<p class="small">({_text(words["not_confirmed"])})</p>')
    if earlier:
        out.append(f'<p class="small">{_text(words["earlier_attempts"])}:</p>')
        out.append('<ul class="small">')
        for n in earlier:
            label = f"{_text(words['attempt'].format(number=n.attempt))}: " if n.attempt is not None else ""
            out.append(f"<li>{label}{_marked(report, n)}</li>")
        out.append("</ul>")
    return out


def _list(report: Report, words: dict[str, str], notes: list[Note]) -> list[str]:
    if not notes:
        return [f"<p>{_text(words['nothing'])}</p>"]
    out = ["<ul>"]
    for n in notes:
        label = f"{_text(words['person'].format(number=n.person))}: " if n.person is not None else ""
        out.append(f"<li>{label}{_marked(report, n)}</li>")
    out.append("</ul>")
    return out


def _marked(report: Report, note: Note) -> str:
    """A note's text with the unsure words marked as in the Markdown, every word escaped."""
    return note.marked(report.low_confidence, escape=_text)


# --- the chart ------------------------------------------------------------------------


def chart(report: Report) -> str:
    """An inline SVG bar chart: per phase the planned minutes against the actual ones,
    the overtime in its own colour at the end of the actual bar, a pause as a striped
    bar after it; a phase not reached shows only its plan. With a legend and an axis."""
    words, extra = report.phrases.table("report"), report.phrases.table("html")
    phases, not_reached = report.phases(), report.phases_not_reached()
    rows: list[dict[str, Any]] = [*phases, *({**p, "not_reached": True} for p in not_reached)]
    longest: float = max(
        [60.0, *(max(p["planned_seconds"], p.get("actual_seconds", 0.0) + p.get("paused_seconds", 0.0)) for p in rows)]
    )
    step = _tick_step(longest)
    top_minutes = max(step, math.ceil(longest / 60 / step) * step)
    plot = _WIDTH - _LEFT - _RIGHT_TEXT
    height = _TOP + len(rows) * _ROW + _AXIS

    def x(seconds: float) -> float:
        return round(_LEFT + plot * max(0.0, seconds) / (top_minutes * 60), 1)

    title, description = extra["chart_title"], extra["chart_description"]
    out = [
        f'<figure><figcaption id="chart-title">{_text(title)}</figcaption>',
        f'<svg viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        'font-family="system-ui,sans-serif" font-size="13">',
        f'<desc id="chart-desc">{_text(description)}</desc>',
        '<defs><pattern id="paused" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="#fff"/><rect width="3" height="6" fill="{_COLOURS["paused"]}"/></pattern></defs>',
    ]
    out += _legend(words, extra)
    for minute in range(0, top_minutes + 1, step):
        gx = x(minute * 60)
        out.append(f'<line x1="{gx}" y1="{_TOP - 4}" x2="{gx}" y2="{height - _AXIS + 4}" stroke="#e3e7ec"/>')
        out.append(f'<text x="{gx}" y="{height - _AXIS + 18}" text-anchor="middle" fill="#555">{minute}</text>')
    out.append(
        f'<text x="{x(top_minutes * 60)}" y="{height - 4}" text-anchor="end" fill="#555">{_text(extra["minutes"])}</text>'
    )
    for i, p in enumerate(rows):
        out += _phase_bars(p, _TOP + i * _ROW, x, words)
    out.append("</svg></figure>")
    return "\n".join(out)


def _tick_step(longest: float) -> int:
    """Minutes between the axis' lines: a handful of them, whatever the longest bar."""
    minutes = longest / 60
    for step in (1, 2, 5, 10, 15, 30, 60):
        if minutes / step <= 8:
            return step
    return max(60, math.ceil(minutes / 8 / 60) * 60)


def _legend(words: dict[str, str], extra: dict[str, str]) -> list[str]:
    items = [
        (words["planned"], _COLOURS["planned"]),
        (words["actual"], _COLOURS["actual"]),
        (extra["overtime"], _COLOURS["overtime"]),
        (words["paused"], "url(#paused)"),
    ]
    out = ['<g class="legend">']
    left = _LEFT
    for label, fill in items:
        out.append(f'<rect x="{left}" y="6" width="14" height="14" fill="{fill}" stroke="#555" stroke-width=".5"/>')
        out.append(f'<text x="{left + 20}" y="18">{_text(label)}</text>')
        left += 34 + 8 * min(len(label), 20)
    out.append("</g>")
    return out


def _phase_bars(p: dict[str, Any], top: float, x: Callable[[float], float], words: dict[str, str]) -> list[str]:
    """One phase: its name, the planned bar, and the actual bar with overtime and pause."""
    name = f"{p['number']}. {p['name']}"
    planned_y, actual_y = top + 20, top + 20 + _BAR + 3
    out = [f'<g class="phase"><text x="{_LEFT}" y="{top + 14}" font-weight="600">{_text(name)}</text>']
    planned_end = x(p["planned_seconds"])
    out.append(
        f'<rect x="{_LEFT}" y="{planned_y}" width="{planned_end - _LEFT}" height="{_BAR}" fill="{_COLOURS["planned"]}">'
        f'<title>{_text(words["planned"])} {clock(p["planned_seconds"])}</title></rect>'
    )
    out.append(
        f'<text x="{planned_end + 5}" y="{planned_y + 11}" fill="#555" font-size="12">{clock(p["planned_seconds"])}</text>'
    )
    if p.get("shortened"):
        cut = x(p["adjusted_seconds"])
        out.append(
            f'<line x1="{cut}" y1="{planned_y - 2}" x2="{cut}" y2="{planned_y + _BAR + 2}" stroke="#1b1b1b" stroke-width="2"/>'
        )
    if p.get("not_reached"):
        out.append(f'<text x="{_LEFT}" y="{actual_y + 11}" fill="#555" font-style="italic">{_text(words["not_reached"])}</text>')
        out.append("</g>")
        return out
    # Clamped: a damaged record's numbers (negative, overtime above the actual time) draw no negative bar.
    actual = max(0.0, p["actual_seconds"])
    overtime, paused = min(max(0.0, p["overtime_seconds"]), actual), max(0.0, p["paused_seconds"])
    on_time_end, actual_end = x(actual - overtime), x(actual)
    out.append(
        f'<rect x="{_LEFT}" y="{actual_y}" width="{on_time_end - _LEFT}" height="{_BAR}" fill="{_COLOURS["actual"]}">'
        f'<title>{_text(words["actual"])} {clock(actual)}</title></rect>'
    )
    if overtime >= 0.5:
        out.append(
            f'<rect class="overtime" x="{on_time_end}" y="{actual_y}" width="{actual_end - on_time_end}" height="{_BAR}" '
            f'fill="{_COLOURS["overtime"]}"><title>+{clock(overtime)}</title></rect>'
        )
    end = actual_end
    if paused >= 0.5:
        end = x(actual + paused)
        out.append(
            f'<rect class="paused" x="{actual_end}" y="{actual_y}" width="{end - actual_end}" height="{_BAR}" '
            f'fill="url(#paused)" stroke="{_COLOURS["paused"]}" stroke-width=".5">'
            f'<title>{_text(words["paused"])} {clock(paused)}</title></rect>'
        )
    out.append(f'<text x="{end + 5}" y="{actual_y + 11}" font-size="12">{clock(actual)}</text>')
    out.append("</g>")
    return out
