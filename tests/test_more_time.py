"""More time when the group needs it (issue 13, item 2): once a phase's time is up the
device says that a double press gives 5 minutes more, and a double press (or "vijf minuten
erbij") gives them; time balance takes them from the phases to come, the report shows them.

Through the daemon with the real button code on mock pins, for every shipped method.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from table import METHOD_FILES, MIN, Table, seconds, table_columns

from assistant.audio.model import command_phrases
from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock
from assistant.core.events import DoublePress, Heard, Listen, Press, VoiceCommand
from assistant.core.session import Session
from assistant.core.settings import ScheduleSettings
from assistant.storage.report import build_report

HINT = "Twee keer drukken geeft 5 minuten extra."
MORE = "Goed, nog 5 minuten voor deze fase. De fasen hierna worden wat korter, zodat we op tijd klaar zijn."
METHODS = [pytest.param(path, id=path.stem) for path in METHOD_FILES]


def device(tmp_path: Path, path: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock], **schedule: object) -> Table:
    return Table(tmp_path / "data", path, pins, clocks, ScheduleSettings(**schedule))  # type: ignore[arg-type]


def first_flexible_after(table: Table, index: int) -> int:
    return next(i for i, p in enumerate(table.method.phases) if i > index and p.flexible)


def to_time_up(table: Table, late: float = 0.0) -> None:
    """Wait until the running phase's time is up (and ``late`` seconds more)."""
    run = table.session.current
    table.wait(run.left(table.now()) + late)


@pytest.mark.parametrize("path", METHODS)
def test_before_the_time_is_up_a_double_press_says_the_phase_and_the_time_left(tmp_path, path, pins, clocks) -> None:
    table = device(tmp_path, path, pins, clocks)
    table.press()
    run = table.session.current
    table.wait(run.planned - 2 * MIN)
    table.said()
    table.double()
    name = table.method.phases[0].name
    assert table.said() == [f"Fase 1: {name}. Nog 2 minuten."]
    assert run.planned == table.method.phases[0].seconds and run.extended == 0, "nothing was added"
    table.close()


@pytest.mark.parametrize("path", METHODS)
def test_after_the_time_is_up_a_double_press_gives_five_minutes_more(tmp_path, path, pins, clocks) -> None:
    table = device(tmp_path, path, pins, clocks)
    table.press()
    run = table.session.current
    to_time_up(table)
    assert table.said()[-1].endswith(HINT), "time up says that a double press gives more time"
    table.wait(30)
    table.double()
    assert table.said() == [MORE]
    assert run.left(table.now()) == pytest.approx(5 * MIN), "no longer in overtime: 5 minutes from the press"
    assert run.planned == pytest.approx(table.method.phases[0].seconds + 5.5 * MIN)
    table.double()
    assert table.said() == [f"Fase 1: {table.method.phases[0].name}. Nog 5 minuten."], "a second double press: the status"
    table.wait(4 * MIN)
    assert table.said() == ["Nog 1 minuut."]
    table.wait(MIN)
    assert table.said()[-1].endswith(HINT), "the new time is up again, with the hint"
    table.close()


@pytest.mark.parametrize("path", METHODS)
def test_in_keep_end_the_phases_to_come_give_the_time_back_and_the_report_shows_it(tmp_path, path, pins, clocks) -> None:
    table = device(tmp_path, path, pins, clocks)
    method = table.method
    table.press()
    to_time_up(table)
    table.double()
    to_time_up(table)  # the group uses its 5 minutes
    table.press()
    later = first_flexible_after(table, 0)
    plans = []
    while table.session.status == "running":
        run = table.session.current
        plans.append(run.planned)
        to_time_up(table)
        table.press()
    assert len(plans) == len(method.phases) - 1
    own = [p.seconds for p in method.phases[1:]]
    assert plans[later - 1] < own[later - 1], "the first flexible phase to come is shorter"
    assert all(plan == p.seconds for plan, p in zip(plans, method.phases[1:], strict=True) if not p.flexible), \
        "firm phases keep their length"
    assert all(plan >= p.seconds / 2 for plan, p in zip(plans, method.phases[1:], strict=True)), "never below half"
    record = table.daemon.finished_records[-1]
    assert abs(record["actual_seconds"] - method.seconds) <= 30, "the session still ends at its planned time"
    assert record["phases"][0]["extended_seconds"] == pytest.approx(5 * MIN)
    markdown = build_report(record).markdown()
    rows, total = table_columns(markdown)
    assert "+5:00 erbij" in rows[0][1]
    for column in (1, 2, 3):
        assert sum(seconds(row[column]) for row in rows) == seconds(total[column]), f"column {column} adds up"
    data = build_report(record).data()
    assert data["phases"][0]["extended_seconds"] == pytest.approx(5 * MIN)
    assert data["extended_seconds"] == pytest.approx(5 * MIN)
    table.close()


@pytest.mark.parametrize("path", METHODS)
def test_in_fixed_mode_the_session_ends_later(tmp_path, path, pins, clocks) -> None:
    table = device(tmp_path, path, pins, clocks, mode="fixed")
    table.press()
    to_time_up(table)
    table.double()
    assert table.said()[-1] == "Goed, nog 5 minuten voor deze fase. De sessie duurt daardoor wat langer."
    while table.session.status == "running":
        to_time_up(table)
        table.press()
    record = table.daemon.finished_records[-1]
    assert [p["adjusted_seconds"] for p in record["phases"][1:]] == [p.seconds for p in table.method.phases[1:]]
    assert record["actual_seconds"] == pytest.approx(table.method.seconds + 5 * MIN)
    table.close()


@pytest.mark.parametrize("path", METHODS)
def test_more_time_survives_a_power_cut(tmp_path, path, pins, clocks) -> None:
    table = device(tmp_path, path, pins, clocks)
    table.press()
    to_time_up(table, late=MIN)
    table.double()
    table.wait(2 * MIN)
    live = table.session.current
    planned, extended, left = live.planned, live.extended, live.left(table.now())
    again = table.restart(off_for=30)
    run = again.session.current
    assert (run.planned, run.extended) == (planned, extended), "the journal's double press gives the same plan"
    assert run.left(again.now()) == pytest.approx(left - 30)
    phrases = again.daemon.phrases
    assert again.said() == [f"Ik was even uitgevallen. We gaan verder met fase 1: {again.method.phases[0].name}. "
                            f"Nog {phrases.duration(left - 30)}."], "the extended time left, not overtime"
    again.close()


def test_a_double_press_while_paused_in_overtime_only_says_the_status(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks)
    table.press()
    to_time_up(table, late=MIN)
    table.hold()
    table.said()
    table.double()
    assert table.said()[0].startswith("We staan op pauze, in fase 1. We zijn 1 minuut over de tijd.")
    assert table.session.current.extended == 0
    table.close()


def test_the_setting_gives_other_minutes_and_0_switches_it_off(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks, extend_minutes=10)
    table.press()
    to_time_up(table)
    assert table.said()[-1].endswith("Twee keer drukken geeft 10 minuten extra.")
    table.double()
    assert table.session.current.left(table.now()) == pytest.approx(10 * MIN)
    table.close()
    off = device(tmp_path / "off", METHOD_FILES[0], pins, clocks, extend_minutes=0)
    off.press()
    to_time_up(off, late=MIN)
    assert "extra" not in off.said()[-1]
    off.double()
    assert off.said()[-1].endswith("We zijn 1 minuut over de tijd.")
    off.close()


def test_a_note_read_back_keeps_the_double_press_to_record_it_again() -> None:
    method = load_method("intervisie", "nl")
    session = Session(method, load_phrases("nl"))
    session.notes.listener = "ready"
    session.handle(Press(), 0)
    session.handle(Press(), 5 * MIN)  # phase 2 takes the leervraag
    session.handle(Press(), 11 * MIN)  # past its time: the press invites the note
    session.handle(Heard("leervraag", "hoe kan ik rust brengen in mijn klas"), 11.5 * MIN)
    effects = session.handle(DoublePress(), 11.6 * MIN)
    assert any(isinstance(e, Listen) for e in effects), "the device listens for the note again"
    assert session.current.extended == 0, "the double press records the note again, it gives no time"
    assert session.current.note.stage != "reading_back"


def test_voice_more_time_is_a_double_press(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks)
    table.press()
    table.said()
    table.daemon.step(VoiceCommand("more_time"))
    assert table.said()[0].startswith("Fase 1:"), "before the time is up: the status"
    to_time_up(table)
    table.daemon.step(VoiceCommand("more_time"))
    assert table.said()[-1] == MORE
    table.close()


class _Model:
    def vosk_model_find_word(self, word: str) -> int:
        return 1


def test_the_more_time_phrases_follow_the_setting_and_are_in_the_grammar(tmp_path, pins, clocks) -> None:
    table = device(tmp_path, METHOD_FILES[0], pins, clocks)
    commands = table.daemon.available.voice_commands()
    assert commands["more_time"] == "vijf minuten erbij|meer tijd"
    grammar = command_phrases(_Model(), {**table.daemon.phrases.table("commands"), **commands})
    assert grammar["vijf minuten erbij"] == "more_time" and grammar["meer tijd"] == "more_time"
    table.close()
    ten = device(tmp_path / "ten", METHOD_FILES[0], pins, clocks, extend_minutes=10)
    assert ten.daemon.available.voice_commands()["more_time"] == "tien minuten erbij|meer tijd"
    ten.close()
    seven = device(tmp_path / "seven", METHOD_FILES[0], pins, clocks, extend_minutes=7)
    assert seven.daemon.available.voice_commands()["more_time"] == "meer tijd", "no phrase with another number"
    seven.close()


def test_the_hint_in_english(tmp_path, pins, clocks) -> None:
    table = Table(tmp_path / "data", METHOD_FILES[0], pins, clocks, language="en")
    table.press()
    to_time_up(table)
    assert table.said()[-1].endswith("Press twice for 5 minutes more.")
    table.double()
    assert table.said()[-1].startswith("All right, 5 minutes more for this phase.")
    table.close()
