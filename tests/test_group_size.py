"""Counting the group at the start: without ``participants`` in the settings, a method with
a round says at the greeting that a long press first counts the group; after one it asks
how many the group is, a press counts one, the device says the number back, begins, and
the rounds use it ("Volgende. Nog drie."). A start press begins at once: a group that
just wants to start is never held up.

Every shipped method is led through the daemon (in this process, on clocks the test
moves) with the real button code on gpiozero's mock pins, as a group at the table would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from table import Table as BaseTable

from assistant.config import SHIPPED_CONFIG, load_method, load_phrases
from assistant.core.clock import FakeClock
from assistant.core.headcount import FIRST_PRESS_SECONDS, SETTLE_SECONDS
from assistant.core.method import Method
from assistant.core.session import COUNTING, IDLE, RUNNING
from assistant.core.settings import Settings
from assistant.storage.records import record_paths

pytestmark = pytest.mark.slow  # the real button on mock pins, every shipped method (about a minute)

PHRASES = load_phrases("nl")
METHOD_FILES = sorted((SHIPPED_CONFIG / "methods").glob("*.toml"))
WITH_ROUNDS = [p for p in METHOD_FILES if any(ph.round for ph in load_method(str(p), "nl").phases)]
WITHOUT_ROUNDS = [p for p in METHOD_FILES if p not in WITH_ROUNDS]
ASK = PHRASES.say("group_ask")


def round_numbers(method: Method) -> list[int]:
    return [p.number for p in method.phases if p.round]


class Table(BaseTable):
    """The device on the table with every shipped method on offer; ``power_cut`` is what
    the next start meets after the power went (the same data folder)."""

    def __init__(self, data: Path, method_file: Path, pins: MockFactory, participants: int = 0) -> None:
        super().__init__(
            data, method_file, pins, (FakeClock(1000.0), FakeClock(1_800_000_000.0)),
            settings=Settings(data_dir=str(data), participants=participants),
            method_folders=[SHIPPED_CONFIG / "methods"],
        )

    def power_cut(self, off_for: float) -> None:
        self.restart(off_for)

    def phase(self) -> int:
        run = self.session.current
        return run.phase.number if run is not None else 0

    def on_to_phase(self, number: int) -> None:
        """Press on (through rounds too) until phase ``number`` runs."""
        for _ in range(100):
            if self.phase() == number:
                return
            self.press()
        raise AssertionError(f"phase {number} was not reached")

    def to_the_end(self) -> dict[str, Any]:
        """Press on until the session ends; its record as kept on disk."""
        for _ in range(200):
            if self.session.status == IDLE and self.daemon.finished_records:
                break
            self.press()
        kept = self.daemon.finished_records[-1]["id"]
        [path] = [p for p in record_paths(self.data) if p.stem == kept]
        return dict(json.loads(path.read_text()))


@pytest.fixture(params=METHOD_FILES, ids=[p.stem for p in METHOD_FILES])
def method_file(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


@pytest.fixture(params=WITH_ROUNDS, ids=[p.stem for p in WITH_ROUNDS])
def round_method(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


@pytest.fixture
def table(tmp_path: Path, round_method: Path, pins: MockFactory) -> Iterator[Table]:
    device = Table(tmp_path / "data", round_method, pins)
    yield device
    device.close()


def begins_phase_one(said: list[str]) -> bool:
    return any(s.startswith("We beginnen.") for s in said) and any(s.startswith("Fase 1:") for s in said)


def round_presses(table: Table, people: int) -> list[str]:
    """Press through the round that runs now; what the device said at each press."""
    said = []
    for _ in range(people):
        table.press()
        said.extend(table.said())
    return said


def round_texts(people: int) -> list[str]:
    """What a round of ``people`` says, press by press: "Volgende. Nog 3." ... "Iedereen is geweest."."""
    texts = [f"Volgende. Nog {left}." for left in range(people - 1, 1, -1)] + ["Volgende. De laatste."]
    return texts


# --- the count by presses ---------------------------------------------------------------


def test_every_shipped_method_with_a_round_asks_and_counts_and_the_rounds_use_the_count(table: Table) -> None:
    table.said()
    table.hold()
    assert table.said() == [ASK]
    assert table.session.status == COUNTING and table.phase() == 0
    table.press(3)
    table.double()  # two more
    assert table.said() == [], "counting presses only tick"
    table.wait(SETTLE_SECONDS - 0.5)
    assert table.session.status == COUNTING, "a pause shorter than the settle time keeps counting"
    table.wait(0.5)
    said = table.said()
    assert said[0] == "Jullie zijn met 5."
    assert begins_phase_one(said)
    method = table.session.method
    first = round_numbers(method)[0]
    table.on_to_phase(first)
    round_said = [s for s in [*said, *table.said()] if "per persoon" in s]
    assert round_said and "Druk op de knop als de volgende aan de beurt is" in round_said[-1]
    said = round_presses(table, 5)
    assert said[: len(round_texts(5))] == round_texts(5)
    assert said[-1].startswith("Iedereen is geweest.")
    assert table.to_the_end()["participants"] == 5, "the record keeps the group as counted"


@pytest.mark.parametrize("method_file", WITHOUT_ROUNDS, ids=[p.stem for p in WITHOUT_ROUNDS])
def test_a_method_without_a_round_starts_at_once(tmp_path: Path, pins: MockFactory, method_file: Path) -> None:
    table = Table(tmp_path / "data", method_file, pins)
    try:
        table.said()
        table.press()
        said = table.said()
        assert ASK not in said and begins_phase_one(said)
        assert table.session.status == RUNNING
    finally:
        table.close()


def test_with_participants_set_the_device_does_not_ask(tmp_path: Path, pins: MockFactory, method_file: Path) -> None:
    table = Table(tmp_path / "data", method_file, pins, participants=4)
    try:
        assert PHRASES.say("group_hint") not in table.said()
        table.hold()
        assert table.said() == [PHRASES.say("status_idle")] and table.session.status == IDLE
        table.press()
        said = table.said()
        assert ASK not in said and begins_phase_one(said)
    finally:
        table.close()


def test_a_group_that_asked_for_the_count_and_then_just_waits_starts_without_one(table: Table) -> None:
    table.said()
    table.hold()
    table.wait(FIRST_PRESS_SECONDS - 0.5)
    assert table.session.status == COUNTING
    assert table.said() == [ASK]
    table.wait(0.5)
    said = table.said()
    assert not any(s.startswith("Jullie zijn met") for s in said)
    assert begins_phase_one(said)
    first = round_numbers(table.session.method)[0]
    table.on_to_phase(first)
    table.said()
    table.press()
    said = table.said()
    assert not any(s.startswith("Volgende.") for s in said), "a round without a count: a press moves on"
    assert table.phase() == first + 1 or table.session.status != RUNNING
    assert table.to_the_end()["participants"] == 0


def test_a_long_press_during_the_count_starts_it_again(table: Table) -> None:
    table.hold()
    table.press(4)
    table.said()
    table.hold()
    assert table.said() == ["We tellen opnieuw. Druk één keer per persoon."]
    assert table.session.status == COUNTING
    table.press(3)
    table.wait(SETTLE_SECONDS)
    assert table.said()[0] == "Jullie zijn met 3."
    assert table.session.participants == 3


def test_the_double_press_chooses_the_method_before_the_start_and_counts_two_after(table: Table) -> None:
    configured = table.session.method.id
    table.said()
    table.double()
    chosen = table.daemon.chooser.chosen
    assert chosen.id != configured and table.session.status == IDLE
    table.said()
    if not any(p.round for p in chosen.phases):
        table.press()
        assert begins_phase_one(table.said())
        return
    table.hold()
    assert table.said() == [ASK]
    table.double()
    table.double()
    table.wait(SETTLE_SECONDS)
    assert table.said()[0] == "Jullie zijn met 4."
    assert table.session.method.id == chosen.id


# --- by voice ---------------------------------------------------------------------------


def test_said_during_the_count_it_begins_at_once(table: Table) -> None:
    table.hold()
    table.press(2)
    table.said()
    table.say("group:7")
    said = table.said()
    assert said[0] == "Jullie zijn met 7." and begins_phase_one(said)
    assert table.session.participants == 7


def test_said_later_it_corrects_the_number_from_the_next_round_on(table: Table) -> None:
    table.hold()
    table.press(4)
    table.wait(SETTLE_SECONDS)
    method = table.session.method
    rounds = round_numbers(method)
    table.said()
    table.say("group:6")
    in_round = table.phase() in rounds
    expected = "Jullie zijn met 6. Dat geldt vanaf de volgende ronde." if in_round else "Jullie zijn met 6."
    assert table.said() == [expected]
    if in_round:
        # This round goes on with four; the next one (if any) goes round six.
        assert round_presses(table, 4)[:3] == round_texts(4)
        later = [n for n in rounds if n > table.phase()]
    else:
        later = rounds
    for number in later:
        table.on_to_phase(number)
        table.said()
        assert round_presses(table, 6)[:5] == round_texts(6)
    assert table.to_the_end()["participants"] == 6


def test_said_before_the_start_it_begins_with_that_number(table: Table) -> None:
    table.said()
    table.say("group:5")
    said = table.said()
    assert said[0] == "Jullie zijn met 5." and begins_phase_one(said)
    assert table.session.participants == 5
    assert table.to_the_end()["participants"] == 5


def test_the_greeting_says_how_to_count_and_a_start_press_begins_at_once(table: Table) -> None:
    assert PHRASES.say("group_hint") in table.speaker.said, "the greeting says a long press counts"
    table.said()
    table.press()
    said = table.said()
    assert ASK not in said and begins_phase_one(said), "a group that just wants to start is not held up"
    assert table.session.status == RUNNING


# --- the power goes ---------------------------------------------------------------------


def test_a_power_cut_during_the_count_asks_again(table: Table) -> None:
    table.hold()
    table.press(3)
    table.power_cut(20.0)
    assert table.said() == [PHRASES.say("group_resumed")]
    assert table.session.status == COUNTING and table.session.count.counted == 0
    table.press(2)
    table.wait(SETTLE_SECONDS)
    said = table.said()
    assert said[0] == "Jullie zijn met 2." and begins_phase_one(said)
    assert table.to_the_end()["participants"] == 2


def test_a_power_cut_during_a_count_long_ago_greets_a_new_group(table: Table) -> None:
    table.hold()
    table.press(3)
    table.power_cut(3 * 3600.0)
    said = table.said()
    assert said[0].startswith("Hallo, ik ben klaar")
    assert table.session.status == IDLE
    assert record_paths(table.data) == [], "a session that never began is not kept"


def test_a_power_cut_after_the_count_keeps_the_number(table: Table) -> None:
    table.hold()
    table.press(4)
    table.wait(SETTLE_SECONDS)
    first = round_numbers(table.session.method)[0]
    table.on_to_phase(first)
    table.press()  # person 2 of 4
    table.power_cut(30.0)
    said = table.said()
    assert said[0].startswith("Ik was even uitgevallen. We gaan verder met fase")
    assert table.session.participants == 4
    assert table.session.current.person == 2
    table.press()
    assert table.said() == ["Volgende. Nog 2."]
    assert table.to_the_end()["participants"] == 4
