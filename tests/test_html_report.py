"""The HTML report: one page anyone can open, and ``intervisie export`` that copies reports.

The page is checked as text (every record text escaped, nothing from outside), and in a
real browser, Debian's chromium in headless mode: it opens the page from a file:// URL
under strace (no network socket may appear), its DOM has the notes and the chart, and
its screenshot shows the chart's bars in their colours. The screenshot is kept as
``docs/images/report.png`` for the README.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support import PROJECT
from test_report import hand_record, keep, whole_session

from assistant.cli import main
from assistant.storage.html import html_page
from assistant.storage.report import build_report, write_report
from assistant.storage.retention import forget, kept_sessions

HOSTILE = '<script>alert("x")</script><img src="http://example.org/x.png" onerror="alert(1)">'


@pytest.fixture(autouse=True)
def amsterdam(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is Dutch winter time, so dates and times in the report are known."""
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def record_nl() -> dict[str, Any]:
    return whole_session("nl")


def outside_references(page: str) -> list[str]:
    """Everything in a page that a browser would fetch, run or follow elsewhere."""
    found = re.findall(r"(?i)(?:https?|ftp|file|data|javascript):|//[a-z0-9.-]+\.[a-z]{2,}", page)
    found += re.findall(r"(?i)<(?:script|link|iframe|object|embed|img|audio|video|base)\b", page)
    found += re.findall(r"(?i)\b(?:src|href|srcset|action|on[a-z]+)\s*=", page)
    found += [u for u in re.findall(r"(?i)url\(([^)]*)\)", page) if u != "#paused"]
    return found


class Markup(HTMLParser):
    """The elements and attributes of a page, as a browser's parser sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes |= {name for name, _ in attrs}

    def handle_data(self, data: str) -> None:
        self.text.append(data)


PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "dl", "dt", "dd", "p", "figure",
    "figcaption", "svg", "desc", "defs", "pattern", "rect", "g", "line", "text", "div", "table", "thead", "tbody",
    "tfoot", "tr", "th", "td", "section", "blockquote", "ul", "li", "footer",
}


# --- the page -------------------------------------------------------------------------


def test_the_page_has_the_notes_the_time_table_and_a_chart_in_the_reports_language(record_nl: dict[str, Any]) -> None:
    page = html_page(build_report(record_nl))
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"nl\">")
    assert "<title>Verslag van de intervisie</title>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media print{@page{size:A4" in page
    assert "<dt>Datum</dt><dd>15-01-2027, 09:00 tot 09:48</dd>" in page
    assert "hoe reageer(?) ik rustig(?) op boze ouders" in page
    assert "<li>poging 1: hoe ga ik om met boze ouders</li>" in page
    assert "<li>eerst luisteren</li>" in page and "<li>persoon 3: hulp vragen mag</li>" in page
    assert "<td>2. introductie van de kwestie</td><td>5:00</td><td>7:00</td><td>+2:00</td><td>–</td>" in page
    assert "Geplande en werkelijke minuten per fase" in page
    # The chart: seven phases, one overtime (phase 2) and one pause (phase 4), and the legend.
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count('<g class="phase">') == 7
    assert svg.count('class="overtime"') == 1 and svg.count('class="paused"') == 1
    assert all(word in svg for word in ("Gepland", "Werkelijk", "Overtijd", "Pauze", "minuten"))


def test_an_english_session_gets_an_english_page() -> None:
    page = html_page(build_report(whole_session("en")))
    assert '<html lang="en">' in page and "Planned and actual minutes per phase" in page
    assert "<h2>Learning question</h2>" in page and "Overtime" in page


def test_the_page_loads_nothing_and_runs_nothing(record_nl: dict[str, Any]) -> None:
    page = html_page(build_report(record_nl))
    assert outside_references(page) == []
    assert "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"" in page


def test_every_text_from_a_hostile_record_is_escaped() -> None:
    phase = {
        "number": 1, "key": "x", "name": HOSTILE, "planned_seconds": 300.0, "adjusted_seconds": 300.0,
        "actual_seconds": 310.0, "overtime_seconds": 10.0, "paused_seconds": 0.0,
    }
    record = hand_record(
        method=HOSTILE,
        language='nl"><script>',
        participants="<b>",
        phases=[phase],
        captures={
            "leervraag": [{"text": HOSTILE + "\x1b[2J\u202e", "accepted": True, "words": [{"word": "<b>", "conf": 0.1}]}],
            "ideas": [{"text": "a & b </li></ul><h1>groot</h1>", "accepted": True}],
            "takeaways": [{"text": "x", "accepted": True, "person": "<i>"}],
        },
    )
    page = html_page(build_report(record))
    markup = Markup(page)
    assert set(markup.tags) <= PAGE_TAGS, "no element from the record survives"
    assert markup.tags.count("h1") == 1 and markup.tags.count("ul") == 2
    assert not {a for a in markup.attributes if a.startswith("on") or a in ("src", "href")}
    assert HOSTILE in "".join(markup.text), "the text is shown as it was, as text"
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "a &amp; b &lt;/li&gt;&lt;/ul&gt;&lt;h1&gt;groot&lt;/h1&gt;" in page
    assert "\x1b" not in page and "\\u001b[2J" in page


def test_numbers_from_a_damaged_record_draw_no_negative_or_endless_chart() -> None:
    phases = [
        {"number": n, "name": f"fase {n}", "planned_seconds": planned, "actual_seconds": actual,
         "overtime_seconds": overtime, "paused_seconds": paused}
        for n, (planned, actual, overtime, paused) in enumerate(
            [(-5.0, 1e9, -3.0, -1.0), (300.0, -20.0, 900.0, 1e9), (0.0, 0.0, 0.0, 0.0)], start=1
        )
    ]
    page = html_page(build_report(hand_record(phases=phases)))
    svg = page[page.index("<svg"):page.index("</svg>")]
    widths = [float(w) for w in re.findall(r' width="(-?[0-9.e+]+)"', svg)]
    assert widths and min(widths) >= 0 and max(widths) <= 640
    assert len(re.findall(r"<line ", svg)) <= 12, "a handful of axis lines, whatever the longest bar"


def test_the_daemon_writes_the_page_next_to_the_markdown_privately(tmp_path: Path, record_nl: dict[str, Any]) -> None:
    write_report(tmp_path, record_nl)
    page = tmp_path / "reports" / "20270115-090000.html"
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert page.read_text(encoding="utf-8") == html_page(build_report(record_nl))


def test_forget_deletes_the_page_too(tmp_path: Path, record_nl: dict[str, Any]) -> None:
    keep(tmp_path, record_nl)
    write_report(tmp_path, record_nl)
    [session] = kept_sessions(tmp_path)
    assert tmp_path / "reports" / "20270115-090000.html" in session.files
    forget(tmp_path, "20270115-090000")
    assert list((tmp_path / "reports").iterdir()) == []


# --- intervisie export ----------------------------------------------------------------


@pytest.fixture
def kept(tmp_path: Path, record_nl: dict[str, Any]) -> Path:
    """Two kept sessions (records only: export builds the reports from them); the config."""
    data = tmp_path / "data"
    keep(data, hand_record("20270108-090000", language="en"))
    keep(data, record_nl)
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{data}"\n', encoding="utf-8")
    return config


def export(config: Path, *args: str) -> int:
    return main(["export", *args, "--config", str(config)])


def test_export_writes_the_newest_sessions_page_and_markdown_and_says_so(
    tmp_path: Path, kept: Path, record_nl: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    assert export(kept, str(stick)) == 0
    page, md = stick / "intervisie-20270115-090000.html", stick / "intervisie-20270115-090000.md"
    assert capsys.readouterr().out == f"Wrote {page}\nWrote {md}\n"
    assert page.read_text(encoding="utf-8") == html_page(build_report(record_nl))
    assert md.read_text(encoding="utf-8") == build_report(record_nl).markdown()
    assert sorted(p.name for p in stick.iterdir()) == [page.name, md.name]


def test_export_never_overwrites_a_file_and_never_follows_a_link(
    tmp_path: Path, kept: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stick, victim = tmp_path / "stick", tmp_path / "victim.txt"
    stick.mkdir()
    victim.write_text("someone else's", encoding="utf-8")
    (stick / "intervisie-20270115-090000.html").write_text("an earlier copy", encoding="utf-8")
    (stick / "intervisie-20270115-090000.md").symlink_to(victim)
    (stick / "intervisie-20270115-090000-2.md").mkdir()
    assert export(kept, str(stick), "20270115-090000") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Wrote {stick / 'intervisie-20270115-090000-2.html'}",
        f"Wrote {stick / 'intervisie-20270115-090000-3.md'}",
    ]
    assert (stick / "intervisie-20270115-090000.html").read_text(encoding="utf-8") == "an earlier copy"
    assert victim.read_text(encoding="utf-8") == "someone else's"
    assert "Verslag van de intervisie" in (stick / "intervisie-20270115-090000-3.md").read_text(encoding="utf-8")


def test_export_all_writes_every_session_and_an_id_with_all_is_a_usage_error(
    tmp_path: Path, kept: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    assert export(kept, str(stick), "--all") == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert "Report of the intervision" in (stick / "intervisie-20270108-090000.md").read_text(encoding="utf-8")
    assert export(kept, str(stick), "20270108-090000", "--all") == 2
    assert export(kept, str(stick), "20990101-000000") == 1
    assert "no session with id '20990101-000000'" in capsys.readouterr().err
    assert len(list(stick.iterdir())) == 4


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: None, "does not exist: mount the USB stick or make the folder"),
        (lambda p: p.write_text("a file"), "is not a folder: name a folder"),
    ],
    ids=["missing", "a file"],
)
def test_a_folder_that_cannot_take_the_reports_is_one_line_and_exit_code_1(
    tmp_path: Path, kept: Path, capsys: pytest.CaptureFixture[str], make: Any, says: str
) -> None:
    target = tmp_path / "stick"
    make(target)
    assert export(kept, str(target)) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and says in captured.err


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_stick_is_one_line_and_leaves_no_half_file(tmp_path: Path, kept: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    # A 8 kB tmpfs in a private mount namespace: the page (about 10 kB) does not fit.
    script = (
        'mount -t tmpfs -o size=8k tmpfs "$1" && "$2" -m assistant export "$1" --config "$3"; '
        'code=$?; ls -A "$1"; exit $code'
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(stick), sys.executable, str(kept)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "the folder is full: intervisie-20270115-090000.html was not written" in done.stderr
    assert done.stdout == "", "no half-written file is left on the stick"

