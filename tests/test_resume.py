"""The journal: after a crash or power cut the device picks up where it was."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from support import Device

from assistant.core.clock import FakeClock
from assistant.core.events import Captured, DoublePress, LongPress, Press
from assistant.core.session import Session
from assistant.core.settings import SessionSettings, Settings
from assistant.storage.records import record_paths

MIN = 60.0


def restart(data: Path, clocks: tuple[FakeClock, FakeClock], off_for: float = 0.0, **kw: Any) -> Device:
    mono, wall = clocks
    wall.advance(off_for)
    mono.advance(off_for + 3.0)  # a new process: the monotonic clock means nothing across it
    return Device(data, mono, wall, **kw)


def snapshot(session: Session, now: float) -> dict[str, Any]:
    run = session.current
    return {
        "status": session.status,
        "paused": session.paused,
        "record": session.record(now),
        "phase": run.phase.number if run else None,
        "person": run.person if run else None,
        "planned": run.planned if run else None,
        "left": round(run.left(now), 6) if run else None,
        "marks": [(m.at, m.kind, m.done) for m in run.marks] if run else None,
    }


def test_a_fresh_device_greets_and_explains_the_button(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    assert device.speaker.said[0] == "Hallo, ik ben klaar voor de intervisie. Druk op de knop om te beginnen."
    assert device.speaker.said[1].startswith("Zo werkt de knop. Kort drukken: volgende stap.")
    assert not (tmp_path / "current.jsonl").exists(), "nothing is written before the session starts"


def test_a_restart_mid_phase_resumes_with_the_remaining_time(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    device.wait(5 * MIN)
    device.do(Press())
    device.do(Press())  # phase 3, 10 minutes
    device.wait(4 * MIN)
    # Power cut: the process is gone; 30 s later it is back.
    again = restart(tmp_path, clocks, off_for=30)
    assert again.speaker.said == [
        "Ik was even uitgevallen. We gaan verder met fase 3: verkenning met vragen. Nog 6 minuten."
    ]
    run = again.session.current
    assert run is not None and run.phase.number == 3
    assert run.left(again.daemon.clock.now()) == pytest.approx(5.5 * MIN)
    # The halfway mark has not been made yet and still comes, at the right moment.
    again.wait(30)
    assert again.speaker.said[-1] == "De helft van de tijd is om. Nog 5 minuten."


def test_a_restart_during_a_pause_stays_paused(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    device.wait(2 * MIN)
    device.do(LongPress())
    device.wait(10 * MIN)
    again = restart(tmp_path, clocks, off_for=120)
    assert again.session.paused
    assert again.speaker.said[-1].startswith("Ik was even uitgevallen. We staan op pauze in fase 1.")
    again.do(LongPress())
    assert again.speaker.said[-1] == "We gaan verder. Nog 3 minuten."


def test_a_restart_in_overtime_says_how_far_over_time_we_are(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    device.wait(6 * MIN)
    again = restart(tmp_path, clocks, off_for=60)
    assert again.speaker.said == [
        "Ik was even uitgevallen. We gaan verder met fase 1: inventarisatie. We zijn 2 minuten over de tijd."
    ]
    assert "time_up" not in again.speaker.tones, "time up was already announced before the cut"


def test_a_session_abandoned_too_long_ago_is_kept_unfinished_and_a_new_one_can_start(tmp_path: Path, clocks) -> None:
    settings = Settings(data_dir=str(tmp_path), session=SessionSettings(resume_within_minutes=60))
    device = Device(tmp_path, *clocks, settings=settings)
    device.do(Press())
    device.wait(7 * MIN)
    again = restart(tmp_path, clocks, off_for=3 * 3600, settings=settings)
    assert again.speaker.said[0].startswith("Hallo, ik ben klaar")
    records = record_paths(tmp_path)
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["finished"] is False
    # The last thing the journal knows is the time-up announcement at 5 minutes.
    assert record["phases"][0]["actual_seconds"] == 5 * MIN
    assert not (tmp_path / "current.jsonl").exists()


def test_a_finished_session_becomes_a_private_record_and_its_journal_goes(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    for minutes in (5, 5, 10, 5, 10, 10, 5):
        device.wait(minutes * MIN)
        device.do(Press())
    records = record_paths(device.journal.data_dir)
    assert len(records) == 1
    assert not (tmp_path / "current.jsonl").exists()
    assert stat.S_IMODE(records[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "records").stat().st_mode) == 0o700
    record = json.loads(records[0].read_text())
    assert record["finished"] is True and record["actual_seconds"] == 50 * MIN
    assert record["started_wall"] < record["ended_wall"]
    # A restart now starts fresh.
    again = restart(tmp_path, clocks)
    assert again.speaker.said[0].startswith("Hallo, ik ben klaar")


def test_the_journal_is_private_while_the_session_runs(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    assert stat.S_IMODE((tmp_path / "current.jsonl").stat().st_mode) == 0o600


def test_a_torn_last_line_is_tolerated(tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    device.wait(MIN)
    device.do(Press())
    device.wait(MIN)
    with open(tmp_path / "current.jsonl", "ab") as handle:
        handle.write(b'{"event":"press","t":12')  # the power went mid-write
    again = restart(tmp_path, clocks)
    assert again.session.current is not None and again.session.current.phase.number == 2
    assert "cut off" in caplog.text
    again.do(Press())  # the journal goes on cleanly after the repair
    third = restart(tmp_path, clocks)
    assert third.session.current is not None and third.session.current.phase.number == 3


def test_a_damaged_journal_is_reported_and_a_new_session_starts(tmp_path: Path, clocks, caplog) -> None:
    (tmp_path / "current.jsonl").write_text("this is not json\n{}\n")
    device = Device(tmp_path, *clocks)
    assert "damaged" in caplog.text
    assert device.speaker.said[0].startswith("Hallo, ik ben klaar")


def test_the_session_goes_on_when_the_journal_cannot_be_written(tmp_path: Path, clocks, caplog) -> None:
    device = Device(tmp_path, *clocks)
    (tmp_path / "current.jsonl").mkdir()  # makes the journal file impossible to create
    device.do(Press())
    device.do(Press())
    assert device.session.current is not None and device.session.current.phase.number == 2
    assert "cannot be resumed" in caplog.text


SCRIPT: list[tuple[str, float]] = [
    ("press", 0), ("wait", 200), ("press", 0), ("wait", 340), ("double", 0), ("press", 0),
    ("wait", 100), ("long", 0), ("wait", 500), ("long", 0), ("wait", 400), ("capture", 0),
    ("press", 0), ("wait", 700), ("press", 0), ("wait", 90), ("press", 0), ("wait", 1300),
]


@pytest.mark.parametrize("cut_after", range(1, len(SCRIPT) + 1))
def test_replaying_the_journal_at_any_point_gives_the_live_state(tmp_path: Path, clocks, cut_after: int) -> None:
    live_dir = tmp_path / "live"
    device = Device(live_dir, *clocks, settings=Settings(data_dir=str(live_dir), participants=3))
    for action, seconds in SCRIPT[:cut_after]:
        if action == "wait":
            device.wait(seconds)
        else:
            event = {"press": Press(), "double": DoublePress(), "long": LongPress()}.get(action) or Captured(
                kind=device.session.capture_kind() or "leervraag", text="wat wil ik leren"
            )
            device.do(event)
    now = device.daemon.clock.now()
    expected = snapshot(device.session, now)
    copy = tmp_path / "copy"
    shutil.copytree(live_dir, copy)
    again = restart(copy, clocks, settings=Settings(data_dir=str(copy), participants=3))
    # The restart took 3 s of monotonic time and no wall time: the clocks agree.
    assert again.daemon.clock.now() == pytest.approx(now)
    assert snapshot(again.session, now) == expected


@pytest.mark.parametrize("damage", ["no wall clock", "a time that is not a number"])
def test_a_journal_with_impossible_times_starts_a_new_session_instead_of_crashing(
    tmp_path: Path, clocks, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    device = Device(tmp_path, *clocks)
    device.do(Press())
    device.wait(MIN)
    device.do(Press())
    journal = tmp_path / "current.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    for line in lines:
        if damage == "no wall clock":
            line.pop("wall", None)
        elif "event" in line:
            line["t"] = float("nan")
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    again = restart(tmp_path, clocks, off_for=30)  # it used to stop here with a traceback, again and again
    assert again.session.current is None, "a new session waits for the first press"
    assert again.speaker.said[0].startswith("Hallo, ik ben klaar voor de intervisie.")
    assert "could not be replayed" in caplog.text
    again.do(Press())
    assert again.session.current is not None and again.session.current.phase.number == 1
