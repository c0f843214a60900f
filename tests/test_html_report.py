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
import shutil
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
from assistant.config import load_method, load_phrases
from assistant.core.settings import Settings
from assistant.service.store import SessionStore
from assistant.storage.html import html_page
from assistant.storage.journal import Journal
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



def test_a_page_cut_off_by_the_power_is_written_at_the_next_start(tmp_path: Path, record_nl: dict[str, Any]) -> None:
    """The power went after the Markdown and the JSON report, before the page."""
    keep(tmp_path, record_nl)
    write_report(tmp_path, record_nl)
    page = tmp_path / "reports" / "20270115-090000.html"
    page.unlink()
    store = SessionStore(Journal(tmp_path), Settings(data_dir=str(tmp_path)), load_phrases("nl"), load_method("intervisie", "nl"))
    store.report_missing()
    assert "hoe reageer(?) ik rustig(?) op boze ouders" in page.read_text(encoding="utf-8")

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
def test_a_full_stick_is_one_line_and_leaves_no_half_file(tmp_path: Path, kept: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("mounting a small tmpfs needs root (CI runs as root; run ./run-tests as root)")
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


# --- in a real browser ----------------------------------------------------------------

SCREENSHOT_SIZE = (800, 1000)
SCREENSHOT_TO = "REPORT_SCREENSHOT"
"""Where to copy the screenshot as well: ``REPORT_SCREENSHOT=docs/images/report.png
./run-tests tests/test_html_report.py -k browser`` renews the README's picture. The
test itself writes only into its own tmp folder."""

TRACED_NETWORK = "socket,connect,sendto,sendmsg,sendmmsg"
CHROMIUM_FLAGS = [
    "--headless", "--disable-gpu", "--no-sandbox", "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-breakpad", "--disable-extensions", "--hide-scrollbars", "--no-pdf-header-footer",
]
"""Headless, and told not to look anything up or fetch anything (it runs without a network as well)."""


class Chromium:
    """Debian's chromium, run headless on a page in a network namespace of its own (no
    network at all) and under strace, with a home and a profile in the test's folder."""

    def __init__(self, root: Path) -> None:
        found = shutil.which("chromium")
        if found is None:
            pytest.fail("chromium is missing: scripts/setup.sh --test installs it (apt-get install chromium)")
        strace = shutil.which("strace")
        if strace is None:
            pytest.fail("strace is missing: scripts/setup.sh --test installs it (apt-get install strace)")
        self.root, self.binary, self.strace = root, found, strace
        self.traces: list[Path] = []
        (root / "home").mkdir(exist_ok=True)

    def run(self, page: Path, *action: str) -> str:
        """Open the page with these flags; what chromium printed on its standard output."""
        trace = self.root / f"trace-{len(self.traces)}"
        self.traces.append(trace)
        no_network = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
        home = self.root / "home"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"), "TZ": "Europe/Amsterdam", "LANG": "C.UTF-8",
        }
        done = subprocess.run(
            [self.strace, "-f", "-qq", "--seccomp-bpf", "-e", f"trace={TRACED_NETWORK}", "-o", str(trace),
             *no_network, self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.root / 'profile'}", *action,
             page.as_uri()],
            capture_output=True, text=True, timeout=120, env=env, cwd=self.root,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def network_use(self) -> list[str]:
        """Every call that reached (or sent to) an internet address, as strace wrote it."""
        used = []
        for trace in self.traces:
            pending: dict[str, str] = {}
            for line in trace.read_text(errors="replace").splitlines():
                pid, _, call = line.partition(" ")
                if "AF_INET" in call and call.startswith(("connect(", "sendto(", "sendmsg(", "sendmmsg(")):
                    if call.endswith("<unfinished ...>"):
                        pending[pid] = call
                        continue
                    if not re.search(r"= -1 ", call):
                        used.append(line)
                elif call.startswith("<... ") and "resumed>" in call and pid in pending:
                    started = pending.pop(pid)
                    if not re.search(r"= -1 ", call):
                        used.append(f"{pid} {started} {call}")
        return used


def read_png(path: Path) -> Any:
    """The pixels of an 8-bit RGB or RGBA PNG (what chromium writes) as a numpy array."""
    import zlib

    import numpy as np

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, interlace = header[8], header[9], header[12]
    assert depth == 8 and colour in (2, 6) and interlace == 0, "an 8-bit RGB(A) PNG"
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, width * bpp + 1)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    previous = np.zeros(width * bpp, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + previous) % 256
        elif kind == 1:
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        else:  # average (3) or Paeth (4): each byte depends on the one before it
            row = np.zeros(width * bpp, dtype=np.int32)
            values, up = line.tolist(), previous.tolist()
            result = [0] * len(values)
            for i, value in enumerate(values):
                left = result[i - bpp] if i >= bpp else 0
                if kind == 3:
                    result[i] = (value + (left + up[i]) // 2) % 256
                else:
                    corner = up[i - bpp] if i >= bpp else 0
                    p = left + up[i] - corner
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
                    best = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
                    result[i] = (value + best) % 256
            row = np.array(result, dtype=np.int32)
        out[y] = row
        previous = row
    return out.reshape(height, width, bpp)[:, :, :3]


def pixels_of(image: Any, colour: str) -> int:
    """How many pixels have (nearly) this colour ("#2f6db5")."""
    import numpy as np

    wanted = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(np.int32) - wanted).max(axis=2) <= 6).sum())


@pytest.mark.slow
def test_in_a_browser_the_page_shows_the_notes_and_the_chart_and_opens_no_connection(
    tmp_path: Path, record_nl: dict[str, Any]
) -> None:
    write_report(tmp_path, record_nl)
    page = tmp_path / "reports" / "20270115-090000.html"
    assert outside_references(page.read_text(encoding="utf-8")) == []
    browser = Chromium(tmp_path)

    dom = browser.run(page, "--dump-dom")
    assert "<svg" in dom and dom.count('<g class="phase">') == 7
    for note in ("hoe reageer(?) ik rustig(?) op boze ouders", "een vast moment voor ouders",
                 "ik bel(?) de ouders deze week en luister eerst", "persoon 3: hulp vragen mag"):
        assert note in dom, note

    shot = tmp_path / "report.png"
    browser.run(page, f"--screenshot={shot}", "--window-size={},{}".format(*SCREENSHOT_SIZE))
    image = read_png(shot)
    assert image.shape[:2] == SCREENSHOT_SIZE[::-1]
    # The chart is drawn: the actual bars, phase 2's overtime and phase 4's pause are there in their colours.
    assert pixels_of(image, "#2f6db5") > 20_000, "the actual minutes"
    assert pixels_of(image, "#c3ceda") > 20_000, "the planned minutes"
    assert 500 < pixels_of(image, "#d2452f") < 5_000, "phase 2's two minutes of overtime"
    assert pixels_of(image, "#6b6b6b") > 200, "phase 4's pause, striped"

    pdf = tmp_path / "report.pdf"
    browser.run(page, f"--print-to-pdf={pdf}")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", pdf.read_bytes())
    assert boxes and all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes), "A4 pages"
    assert len(boxes) <= 3, "the whole report on a few pages"

    assert browser.network_use() == [], "the browser reached no network address"
    if os.environ.get(SCREENSHOT_TO):
        shutil.copyfile(shot, os.environ[SCREENSHOT_TO])
