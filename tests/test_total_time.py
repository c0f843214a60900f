"""The session fits the time the group has (issue 13, item 3): ``[schedule] total_minutes``
or "we hebben een uur" at the table shortens the flexible phases so the session fits, firm
phases kept, none below half; at the start the device says the clock time it ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from table import METHOD_FILES, MIN, Table, seconds, table_columns

from assistant.audio.model import command_phrases
from assistant.config import load_method
from assistant.core.clock import FakeClock
from assistant.core.events import VoiceCommand, is_voice_command
from assistant.core.fitting import fitted_lengths, shortest_seconds
from assistant.core.settings import ScheduleSettings
from assistant.storage.report import build_report

METHODS = [pytest.param(path, id=path.stem) for path in METHOD_FILES]


def device(tmp_path: Path, path: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock], **schedule: object) -> Table:
    return Table(tmp_path / "data", path, pins, clocks, ScheduleSettings(**schedule))  # type: ignore[arg-type]


def clock_time(wall: float, seconds: float) -> str:
    end = datetime.fromtimestamp(wall).astimezone() + timedelta(seconds=seconds)
    end += timedelta(seconds=30)  # to the nearest minute
    return f"{end.hour}:{end.minute:02d}" if end.minute else f"{end.hour} uur"


@pytest.mark.parametrize("path", METHODS)
@pytest.mark.parametrize("total", range(20, 131, 5))
def test_every_method_fits_within_its_bounds(path: Path, total: int) -> None:
    method = load_method(str(path), "nl")
    lengths = fitted_lengths(method, total * MIN)
    for phase, length in zip(method.phases, lengths, strict=True):
        if not phase.flexible:
            assert length == phase.seconds, "a firm phase keeps its length"
        assert phase.seconds / 2 <= length <= phase.seconds, "never below half, never longer"
        assert length % 30 == 0 or length == phase.seconds, "whole or half minutes"
    if total * MIN >= method.seconds:
        assert lengths == [p.seconds for p in method.phases], "a longer time is not stretched"
    elif total * MIN >= shortest_seconds(method):
        assert sum(lengths) == total * MIN, "the session fills the time it has, exactly"
    else:
        assert sum(lengths) == shortest_seconds(method), "too short: the shortest the method can be"


@pytest.mark.parametrize("path", METHODS)
def test_the_start_says_the_fitted_length_and_the_end_time(tmp_path, path, pins, clocks) -> None:
    method = load_method(str(path), "nl")
    total = max(shortest_seconds(method), method.seconds - 10 * MIN) // MIN
    table = device(tmp_path, path, pins, clocks, total_minutes=total)
    table.said()
    wall = table.wall.t
    table.press()
    fitted = sum(fitted_lengths(method, total * MIN))
    said = table.said()
    assert said[0] == (
        f"We beginnen. We hebben {total:g} minuten, dus de {method.name} duurt nu ongeveer {fitted / MIN:g} minuten "
        f"in plaats van {method.seconds / MIN:g} minuten. We zijn om {clock_time(wall, fitted)} klaar."
    )
    assert said[1].startswith(f"Fase 1: {method.phases[0].name}.")
    plans = []
    while table.session.status == "running":
        plans.append(table.session.current.planned)
        table.wait(table.session.current.left(table.now()))
        table.press()
    assert sum(plans) == fitted, "every phase as fitted"
    record = table.daemon.finished_records[-1]
    assert record["available_seconds"] == total * MIN and record["method_seconds"] == method.seconds
    assert record["planned_seconds"] == fitted
    markdown = build_report(record).markdown()
    rows, totals = table_columns(markdown)
    assert seconds(totals[1]) == fitted and sum(seconds(r[1]) for r in rows) == fitted, "the plan column adds up"
    assert "Ingekort voor de beschikbare tijd" in markdown
    table.close()


def test_a_time_too_short_for_the_method_says_so_in_one_sentence(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks, total_minutes=10)
    method = table.method
    table.said()
    table.press()
    first = table.said()[0]
    shortest = shortest_seconds(method) / MIN
    assert first.startswith(f"We beginnen. Korter dan {shortest:g} minuten kan de {method.name} niet, "
                            "ook al hebben we maar 10 minuten. We zijn om ")
    table.close()


def test_a_time_longer_than_the_method_changes_nothing_but_says_the_end(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks, total_minutes=120)
    method = table.method
    table.said()
    wall = table.wall.t
    table.press()
    assert table.said()[0] == (f"We beginnen. De {method.name} duurt ongeveer {method.seconds / MIN:g} minuten, dat past in "
                               f"de 120 minuten die we hebben. We zijn om {clock_time(wall, method.seconds)} klaar.")
    assert table.session.current.planned == method.phases[0].seconds
    table.close()


def test_without_a_time_the_start_is_as_before(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks)
    table.said()
    table.press()
    assert table.said()[0] == f"We beginnen. De {table.method.name} duurt ongeveer {table.method.seconds / MIN:g} minuten."
    table.close()


def test_said_at_the_table_fits_the_next_session_and_survives_a_power_cut(tmp_path, pins, clocks) -> None:
    path = next(p for p in METHOD_FILES if p.stem == "intervisie")
    table = device(tmp_path, path, pins, clocks)
    table.said()
    table.daemon.step(VoiceCommand("total:45"))
    assert table.said() == ["We hebben 45 minuten. Dan duurt de intervisie 45 minuten in plaats van 50 minuten. "
                            "Druk op de knop om te beginnen."]
    assert table.session.status == "idle" and table.daemon.session_id is None, "saying the time starts nothing"
    table.press()
    fitted = fitted_lengths(table.method, 45 * MIN)
    assert table.session.current.planned == fitted[0]
    table.wait(fitted[0])
    table.press()
    table.wait(MIN)
    again = table.restart(off_for=20)
    assert [r.planned for r in again.session.runs] == fitted[:2], "the journal's header keeps the time"
    assert again.session.method.seconds == 45 * MIN
    while again.session.status == "running":
        again.wait(again.session.current.left(again.now()))
        again.press()
    assert again.daemon.finished_records[-1]["planned_seconds"] == 45 * MIN
    again.said()
    again.press()
    assert again.said()[0] == "We beginnen. De intervisie duurt ongeveer 50 minuten.", \
        "the next meeting starts from the setting again"
    again.close()


def test_the_time_phrases_are_in_the_grammar(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks)
    commands = table.daemon.available.voice_commands()
    assert all(is_voice_command(name) for name in commands)

    class Model:
        def vosk_model_find_word(self, word: str) -> int:
            return 1

    grammar = command_phrases(Model(), commands)
    assert grammar["we hebben een uur"] == "total:60"
    assert grammar["we hebben drie kwartier"] == "total:45"
    assert grammar["we hebben anderhalf uur"] == "total:90"
    assert grammar["we hebben dertig minuten"] == "total:30"
    assert 10 <= len({v for v in grammar.values() if v.startswith("total:")}) <= 30, "a modest list"
    table.close()


def test_during_a_session_the_time_phrases_change_nothing(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks)
    table.press()
    table.said()
    run = table.session.current
    table.daemon.step(VoiceCommand("total:30"))
    assert table.said() == [] and table.session.current is run and run.planned == table.method.phases[0].seconds
    table.close()
