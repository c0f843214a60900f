"""Every shipped method leads a whole session (issue 12, "Done when"): the daemon runs as
a process at a raised speed with the keyboard as the button, and the report it writes
has the phases, the minutes and the note headings of the method's file.

No speech model here: the device keeps time and the report lists each note the method
writes down under its heading, with nothing noted.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from support import PROJECT, Daemon

pytestmark = pytest.mark.slow  # the daemon as a process, once per method

METHODS = sorted((PROJECT / "config" / "methods").glob("*.toml"))


def test_there_are_at_least_four_methods_besides_the_seed() -> None:
    ids = [path.stem for path in METHODS]
    assert "intervisie" in ids and len(ids) >= 5, ids


@pytest.mark.parametrize("path", METHODS, ids=[p.stem for p in METHODS])
def test_the_method_runs_a_whole_session_and_its_report_follows_its_file(path: Path, tmp_path: Path) -> None:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    phases = raw["phases"]
    daemon = Daemon(tmp_path, "--speed", "60", "--method", path.stem)
    try:
        daemon.expect(f"say [ready]: Hallo, ik ben klaar voor de {raw['name']['nl']}.")
        daemon.key("")
        daemon.expect(f"say [start]: We beginnen. De {raw['name']['nl']} duurt ongeveer")
        for number, phase in enumerate(phases, start=1):
            daemon.expect(f"say [phase]: Fase {number}: {phase['name']['nl']}.")
            daemon.key("")  # on to the next phase (no group size set: rounds take one press)
        daemon.expect("say [summary]: Zo liep de tijd.")
        daemon.expect("report of session")
        daemon.key("q")
        assert daemon.finish(timeout=30) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    [report_path] = (tmp_path / "data" / "reports").glob("*.json")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["method"] == raw["id"] == path.stem
    assert report["finished"] is True
    assert [(p["key"], p["name"], p["planned_seconds"]) for p in report["phases"]] == [
        (p["key"], p["name"]["nl"], p["minutes"] * 60.0) for p in phases
    ]
    assert report["planned_seconds"] == sum(p["minutes"] for p in phases) * 60.0
    # The notes: each one a phase captures, once, in the order of the phases, under its heading.
    own = {note["key"]: note["heading"]["nl"] for note in raw.get("notes", [])}
    builtin = {"leervraag": "Leervraag", "kernvraag": "Kernvraag", "ideas": "Ideeën", "actieplan": "Actieplan",
               "takeaways": "Wat iedereen meeneemt"}
    captured = list(dict.fromkeys(p["capture"] for p in phases if p.get("capture")))
    assert captured, "every method writes something down"
    assert [(n["key"], n["heading"]) for n in report["notes"]] == [(k, own.get(k) or builtin[k]) for k in captured]
    markdown = report_path.with_suffix(".md").read_text(encoding="utf-8")
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[1:] == [own.get(k) or builtin[k] for k in captured]
