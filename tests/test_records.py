"""Kept records: one order and one reader for the daemon, the report command and retention."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import Recorder

from assistant.cli import main
from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import Press
from assistant.core.record import RecordError, validate_record
from assistant.core.settings import Settings
from assistant.service.daemon import Daemon
from assistant.service.store import SessionStore
from assistant.storage.journal import Journal
from assistant.storage.records import find_record, read_records, record_paths, session_list
from assistant.storage.retention import apply_retention, kept_sessions

WALL = 1_800_000_000.0


def record(session_id: str, actieplan: str = "", started: float = WALL) -> dict[str, Any]:
    """A small finished record, as the daemon keeps it."""
    captures = {"actieplan": [{"text": actieplan, "accepted": True, "attempt": 1}]} if actieplan else {}
    return {
        "id": session_id,
        "started_wall": started,
        "ended_wall": started + 60,
        "method": "intervisie",
        "language": "nl",
        "finished": True,
        "phases": [],
        "captures": captures,
    }


def store(data: Path) -> SessionStore:
    return SessionStore(Journal(data), Settings(data_dir=str(data)), load_phrases("nl"), load_method("intervisie", "nl"))


@pytest.fixture
def same_second(tmp_path: Path) -> Path:
    """Three sessions started in one second ("-2", "-10" after the first), kept out of order."""
    data = tmp_path / "data"
    journal = Journal(data)
    journal.finish(record("20270115-090000-10", "plan tien", WALL + 2))
    journal.finish(record("20270115-090000", "plan een", WALL))
    journal.finish(record("20270115-090000-2", "plan twee", WALL + 1))
    journal.finish(record("20270114-170000", "plan gisteren", WALL - 57600))
    return data


def test_a_second_session_in_the_same_second_comes_after_the_first_everywhere(same_second: Path, tmp_path: Path) -> None:
    order = ["20270114-170000", "20270115-090000", "20270115-090000-2", "20270115-090000-10"]
    assert [p.stem for p in record_paths(same_second)] == order
    assert [s["id"] for s in session_list(same_second)] == order
    assert [s.id for s in kept_sessions(same_second)] == order
    assert find_record(same_second)["id"] == "20270115-090000-10"
    # The daemon reads back the newest session's actieplan at the next start.
    assert store(same_second).previous_actieplan() == "plan tien"
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{same_second}"\n', encoding="utf-8")
    assert main(["report", "--json", "--config", str(config)]) == 0


def test_the_report_still_owed_is_the_newest_sessions(same_second: Path) -> None:
    store(same_second).report_missing()
    assert sorted(p.name for p in (same_second / "reports").iterdir()) == [
        "20270115-090000-10.html",
        "20270115-090000-10.json",
        "20270115-090000-10.md",
    ]


DAMAGED: list[Any] = [
    {"phases": "x"},
    {"captures": 5},
    {"captures": {"actieplan": "x"}},
    {"captures": {"actieplan": [5]}},
    {"captures": {"actieplan": [{"text": 5, "accepted": True}]}},
    {"started_wall": 1e300},
    {"started_wall": -1e300},
    {"started_wall": -1e20},
    {"started_wall": "gisteren"},
    {"phases": [{"actual_seconds": 1e308 * 10}]},
    {"phases": [{"planned_seconds": "tien"}]},
    {"phases": [5]},
    {"participants": 2.5},
    {"finished": "ja"},
    {"language": ["nl"]},
    [1, 2, 3],
    "a text",
]


@pytest.mark.parametrize("damage", DAMAGED, ids=[json.dumps(d, allow_nan=True)[:40] for d in DAMAGED])
def test_a_damaged_record_is_skipped_with_one_log_line_and_the_others_still_count(
    same_second: Path, damage: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = same_second / "records" / "20270116-080000.json"
    content = {**record("20270116-080000", "beschadigd plan", WALL + 86400), **damage} if isinstance(damage, dict) else damage
    bad.write_text(json.dumps(content, allow_nan=True), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        kept = read_records(same_second)
    assert [p.stem for p, _ in kept] == ["20270114-170000", "20270115-090000", "20270115-090000-2", "20270115-090000-10"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "20270116-080000.json is damaged" in warnings[0]
    # The previous actieplan comes from the newest record that is whole.
    assert store(same_second).previous_actieplan() == "plan tien"
    # The list shows it as damaged; asking for it is one clear line, not a traceback.
    assert session_list(same_second)[-1] == {"id": "20270116-080000", "damaged": True}
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{same_second}"\n', encoding="utf-8")
    assert main(["report", "--list", "--config", str(config)]) == 0
    assert main(["report", "20270116-080000", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged" in err
    # Retention dates it by its id instead of its damaged start time.
    [dated] = [s for s in kept_sessions(same_second) if s.id == "20270116-080000"]
    assert dated.dated_by == "id"


def test_a_whole_record_passes_validation_unchanged() -> None:
    whole = record("20270115-090000", "ik bel de ouders")
    whole["phases"] = [{"number": 1, "key": "inventarisatie", "name": "inventarisatie", "planned_seconds": 300.0,
                        "adjusted_seconds": 300.0, "actual_seconds": 301.5, "overtime_seconds": 1.5, "paused_seconds": 0.0}]
    whole["captures"]["actieplan"][0]["words"] = [{"word": "ik", "conf": 0.9}]
    assert validate_record(json.loads(json.dumps(whole))) == whole


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_record_time_that_is_not_a_number_is_damage(value: float) -> None:
    with pytest.raises(RecordError, match="started_wall"):
        validate_record({"started_wall": value})


# --- only the assistant's own files (issue 9: findings 2, 9 and 15) -----------------------


def _others(data: Path, outside: Path) -> list[Path]:
    """A user's own files in the data folder (data_dir = "~/Documents"), a FIFO and links."""
    (data / "reports").mkdir(exist_ok=True)
    own = [data / "records" / "invoice-2026.json", data / "reports" / "q3-budget.md", data / "records" / "notes.tmp",
           data / "reports" / "20270115.md", data / "records" / ".hidden.json"]
    own[0].write_text(json.dumps(record("invoice-2026", "geen sessie", 0.0)), encoding="utf-8")
    for path in own[1:]:
        path.write_text("van mij", encoding="utf-8")
    fifo = data / "records" / "20270116-080000.json"
    os.mkfifo(fifo)
    outside.write_text(json.dumps(record("20270117-080000", "buiten de map")), encoding="utf-8")
    link = data / "records" / "20270117-080000.json"
    link.symlink_to(outside)
    report_link = data / "reports" / "20270117-080000.md"
    report_link.symlink_to(outside)
    return [*own, fifo, link, report_link, outside]


def test_files_not_named_like_a_session_and_special_files_are_never_listed_read_or_deleted(
    same_second: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    others = _others(same_second, tmp_path / "elsewhere.json")
    before = {p: p.lstat().st_mode for p in others}
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{same_second}"\n', encoding="utf-8")
    assert [p.stem for p in record_paths(same_second)] == [
        "20270114-170000", "20270115-090000", "20270115-090000-2", "20270115-090000-10"
    ]
    assert {s.id for s in kept_sessions(same_second)} == {p.stem for p in record_paths(same_second)}
    # The command runs in a process of its own: a FIFO opened for reading would hang it.
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "report", "--list", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "invoice" not in done.stdout and "20270116" not in done.stdout and "20270117" not in done.stdout
    # Retention long after every session, then forget --all: only the sessions go.
    assert len(apply_retention(same_second, 1, now=WALL + 400 * 86400)) == 4
    assert main(["forget", "--all", "--config", str(config)]) == 0
    assert {p: p.lstat().st_mode for p in others} == before
    assert json.loads(others[-1].read_text(encoding="utf-8"))["id"] == "20270117-080000"


def test_the_id_inside_a_record_never_reaches_the_terminal(same_second: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = same_second / "records" / "20270115-090000.json"
    hostile = {**json.loads(path.read_text(encoding="utf-8")), "id": "\x1b]0;owned\x07\x1b[2J20990101-000000"}
    path.write_text(json.dumps(hostile), encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{same_second}"\n', encoding="utf-8")
    for args in (["report", "--list"], ["report", "20270115-090000"], ["report", "20270115-090000", "--json"]):
        assert main([*args, "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out
        assert "20990101" not in out
        if args[1] != "20270115-090000" or "--json" in args:
            assert "20270115-090000" in out, "the id is the file's name"


def test_a_link_planted_as_a_temporary_file_is_never_written_through(tmp_path: Path) -> None:
    """Issue 9, finding 11: ``reports/.ID.md.tmp`` as a link to a file outside the data folder."""
    data = tmp_path / "data"
    outside = tmp_path / "someone-elses.txt"
    outside.write_text("niet van de assistent", encoding="utf-8")
    (data / "reports").mkdir(parents=True)
    (data / "records").mkdir(parents=True)
    for name in (".20270115-090000.md.tmp", ".20270115-090000.json.tmp"):
        (data / "reports" / name).symlink_to(outside)
    (data / "records" / ".20270115-090000.json.tmp").symlink_to(outside)
    Journal(data).finish(record("20270115-090000", "ik bel de ouders"))
    store(data).write_report(read_records(data)[0][1])
    assert outside.read_text(encoding="utf-8") == "niet van de assistent"
    assert "ik bel de ouders" in (data / "reports" / "20270115-090000.md").read_text(encoding="utf-8")
    assert json.loads((data / "records" / "20270115-090000.json").read_text(encoding="utf-8"))["id"] == "20270115-090000"
    assert not any(p.is_symlink() for p in data.rglob("*"))


def test_a_json_report_cut_off_by_the_power_is_written_at_the_next_start(same_second: Path) -> None:
    """Issue 9, finding 12: the power went between the Markdown and the JSON report."""
    store(same_second).report_missing()
    js = same_second / "reports" / "20270115-090000-10.json"
    js.unlink()
    store(same_second).report_missing()
    assert json.loads(js.read_text(encoding="utf-8"))["actieplan"]["text"] == "plan tien"


def _daemon(data: Path) -> Daemon:
    return Daemon(
        Settings(data_dir=str(data)),
        load_method("intervisie", "nl"),
        load_phrases("nl"),
        Recorder(),
        Journal(data),
        SessionClock(1.0, monotonic=FakeClock(100.0)),
        wall=FakeClock(WALL + 86400),
    )


def test_the_previous_actieplan_is_read_back_at_the_start_press(same_second: Path) -> None:
    daemon = _daemon(same_second)
    daemon.start_up()
    daemon.step(Press())
    assert any("Vorige keer was het actieplan: plan tien." in text for text in daemon.spoken)


def test_a_forgotten_actieplan_is_not_read_back_at_the_next_start(same_second: Path, tmp_path: Path) -> None:
    """Issue 9, finding 18: `forget --all` between start-up and the first press."""
    daemon = _daemon(same_second)
    daemon.start_up()
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{same_second}"\n', encoding="utf-8")
    assert main(["forget", "--all", "--config", str(config)]) == 0
    daemon.step(Press())
    assert any(text.startswith("We beginnen") or "Fase 1" in text for text in daemon.spoken)
    assert not any("Vorige keer" in text or "plan tien" in text for text in daemon.spoken)


def test_set_aside_journals_are_deleted_by_retention_and_forget_all(tmp_path: Path) -> None:
    """A journal set aside (too big, unreadable) may hold a session: it is not kept forever."""
    data = tmp_path / "data"
    Journal(data).finish(record("20270115-090000", "plan", WALL))
    old = data / "journal-set-aside-20270101-100000.jsonl"
    new = data / "journal-set-aside-20270201-100000-2.jsonl"
    for path in (old, new):
        path.write_text('{"kind": "header"}\n')
    mine = data / "journal-set-aside-notes.jsonl"  # not named as the daemon names them
    mine.write_text("x")
    link = data / "journal-set-aside-20260101-100000.jsonl"
    outside = tmp_path / "outside.jsonl"
    outside.write_text("keep")
    link.symlink_to(outside)
    february = time.mktime(time.strptime("20270210-120000", "%Y%m%d-%H%M%S"))
    apply_retention(data, 30, february)
    assert not old.exists() and new.exists(), "only the one set aside more than 30 days ago"
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{data}"\n', encoding="utf-8")
    assert main(["forget", "--all", "--config", str(config)]) == 0
    assert not new.exists()
    assert mine.read_text() == "x" and link.is_symlink() and outside.read_text() == "keep"
