"""Choosing the method at the table: before a session starts a double press goes round the
offered methods, a press starts the one last said, and "methode <naam>" chooses by voice.

The gestures come from the real button code (``assistant.hardware.button.GpioButton``) on
gpiozero's mock pins, and go through the daemon's own queue and step, as in the loop.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from table import Table as BaseTable

from assistant.audio.recognition import Transcriber
from assistant.config import SHIPPED_CONFIG, installed_methods, load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import TOTAL_COMMAND, DoublePress, Event, VoiceCommand
from assistant.core.fitting import fitted_method
from assistant.core.method import Method
from assistant.core.session import IDLE, RUNNING
from assistant.core.settings import ListeningSettings, MethodsSettings, ScheduleSettings, Settings
from assistant.service.daemon import Daemon
from tests.support import Recorder

"""The double-press window of the test button (seconds, real time)."""
PATIENCE = 5.0
"""Longest wait for a gesture to come through, generous for a loaded 2-core machine."""
SHIPPED_METHOD = SHIPPED_CONFIG / "methods" / "intervisie.toml"
MIN = 60.0
ORDINARY = (5, 5, 10, 5, 10, 10, 5)
"""The shipped method's phases in minutes (the copies below change only the first)."""


def method_file(folder: Path, ident: str, name: str, first_minutes: float = 5, first_phase: str = "") -> Path:
    """A copy of the shipped method with its own id, name, first phase and so its own length."""
    text = SHIPPED_METHOD.read_text(encoding="utf-8")
    text = text.replace('id = "intervisie"', f'id = "{ident}"', 1)
    text = text.replace('name.nl = "intervisie"', f'name.nl = "{name}"', 1)
    text = text.replace("minutes = 5\n", f"minutes = {first_minutes:g}\n", 1)
    if first_phase:
        text = text.replace('name.nl = "inventarisatie"', f'name.nl = "{first_phase}"', 1)
    path = folder / f"{ident}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def methods(tmp_path: Path) -> Path:
    """A methods folder: intervisie (50 min), incidentmethode (74 min), roddelmethode (60 min)."""
    folder = tmp_path / "methods"
    folder.mkdir()
    shutil.copy(SHIPPED_METHOD, folder / "intervisie.toml")
    method_file(folder, "incidentmethode", "incidentmethode", 29, "het incident")
    method_file(folder, "roddelmethode", "roddelmethode", 15, "de roddel")
    return folder


class Table(BaseTable):
    """The device on the table with ``folder`` as its methods folder; the configured
    method is ``configured`` in it."""

    def __init__(self, data: Path, folder: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock],
                 offer: tuple[str, ...] = (), configured: str = "intervisie",
                 schedule: ScheduleSettings = ScheduleSettings()) -> None:
        settings = Settings(data_dir=str(data), methods=MethodsSettings(offer=offer), schedule=schedule)
        super().__init__(data, folder / f"{configured}.toml", pins, clocks, settings=settings, method_folders=[folder])


@pytest.fixture
def table(tmp_path: Path, methods: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock]) -> Iterator[Table]:
    device = Table(tmp_path / "data", methods, pins, clocks)
    yield device
    device.close()


def choice(name: str, minutes: int) -> str:
    return f"{name}, {minutes} minuten. Druk op de knop om te beginnen."


# --- the double press and the press -----------------------------------------------------


def test_the_greeting_says_that_a_double_press_chooses_another_method(table: Table) -> None:
    said = table.said()
    assert said[0].startswith("Hallo, ik ben klaar voor de intervisie.")
    assert said[2] == "Met twee keer kort drukken kies je voor het begin een andere methode."
    # Then (no group size set, and the method has a round) how to have the group counted.
    assert said[3:] == [load_phrases("nl").say("group_hint")]


def test_a_double_press_goes_round_the_offered_methods_saying_name_and_length(table: Table) -> None:
    table.said()
    table.double()
    assert table.said() == [choice("Incidentmethode", 74)]
    table.double()
    assert table.said() == [choice("Roddelmethode", 60)]
    table.double()
    assert table.said() == [choice("Intervisie", 50)], "round again to the configured method"
    table.double()
    assert table.said() == [choice("Incidentmethode", 74)]
    assert table.session.status == IDLE, "choosing starts nothing"
    assert table.daemon.session_id is None and not list((table.daemon.journal.data_dir).glob("current*")), \
        "nor writes a journal"


def test_a_press_starts_the_method_last_said(table: Table) -> None:
    table.double()
    table.double()  # roddelmethode
    table.said()
    table.press()
    assert table.session.status == RUNNING
    assert table.session.method.id == "roddelmethode"
    said = table.said()
    assert said[0] == "We beginnen. De roddelmethode duurt ongeveer 60 minuten."
    assert said[1].startswith("Fase 1: de roddel. 15 minuten.")
    journal = table.daemon.journal.path
    header = json.loads(journal.read_text().splitlines()[0])
    assert header["method"] == "roddelmethode", "the journal names the method the group chose"


def test_with_less_time_than_a_method_takes_it_is_announced_with_the_length_it_will_run(
    tmp_path: Path, methods: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock]
) -> None:
    # [schedule] total_minutes = 60: the 74-minute incidentmethode will run shorter, and the
    # group hears that length when it chooses it (and the same at the start).
    table = Table(tmp_path / "data", methods, pins, clocks, schedule=ScheduleSettings(total_minutes=60))
    try:
        incident = table.daemon.chooser.find("incidentmethode")
        assert incident is not None
        fitted = fitted_method(incident, 60 * MIN).seconds / MIN
        assert fitted < 74
        table.said()
        table.double()
        assert table.said() == [
            f"Incidentmethode, {fitted:g} minuten in plaats van 74 minuten, in de tijd die we hebben. "
            "Druk op de knop om te beginnen."
        ]
        table.double()
        assert table.said() == [choice("Roddelmethode", 60)], "a method that fits is said as before"
        table.double()
        table.double()
        table.said()
        table.press()
        assert f"duurt nu ongeveer {fitted:g} minuten in plaats van 74 minuten" in table.said()[0], \
            "the start says the length the choice said"
    finally:
        table.close()


def test_a_time_said_at_the_table_shortens_the_method_chosen_after_it(table: Table) -> None:
    table.said()
    table.say(f"{TOTAL_COMMAND}45")
    table.said()
    table.double()
    said = table.said()
    assert said[0].startswith("Incidentmethode, ") and "in plaats van 74 minuten" in said[0], said
    table.double()
    table.double()
    said = table.said()
    assert said[0].startswith("Roddelmethode, 45 minuten in plaats van 60 minuten"), said
    assert said[1].startswith("Intervisie, 45 minuten in plaats van 50 minuten"), said


def test_herhaal_after_a_choice_says_the_choice_again(table: Table) -> None:
    table.said()
    table.double()
    assert table.said() == [choice("Incidentmethode", 74)]
    table.say("repeat")
    assert table.said() == [choice("Incidentmethode", 74)], "what was said last, not 'we have not begun'"
    table.say(f"{TOTAL_COMMAND}60")
    fitted = table.said()
    assert fitted[-1].startswith("We hebben 60 minuten."), fitted
    table.say("repeat")
    assert table.said() == fitted[-1:], "the time said back, again"
    table.press()
    assert table.session.status == RUNNING and table.session.method.id == "incidentmethode"


def test_during_the_session_the_double_press_says_the_time_left_again(table: Table) -> None:
    table.double()
    table.press()
    table.wait(4 * MIN)
    table.said()
    table.double()
    assert table.said() == ["Fase 1: het incident. Nog 25 minuten."]
    assert table.session.method.id == "incidentmethode"


def test_a_long_press_before_the_start_counts_the_group_for_the_chosen_method(table: Table) -> None:
    table.double()
    table.said()
    table.hold()
    assert table.said() == [load_phrases("nl").say("group_ask")]
    assert table.session.status == "counting" and table.session.method.id == "incidentmethode"


def test_after_a_session_the_next_one_starts_from_the_configured_method(table: Table) -> None:
    table.double()
    table.press()
    for minutes in (29, *ORDINARY[1:]):
        table.wait(minutes * MIN)
        table.press()
    assert table.daemon.finished_records[-1]["method"] == "incidentmethode"
    assert table.session.status == IDLE
    assert table.session.method.id == "intervisie", "each meeting chooses its method"
    table.said()
    table.double()
    assert table.said() == [choice("Incidentmethode", 74)], "the choice starts from the configured method again"


# --- what is offered --------------------------------------------------------------------


def test_offer_limits_and_orders_the_methods_and_names_an_unknown_id_once(
    tmp_path: Path, methods: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        table = Table(tmp_path / "data", methods, pins, clocks, offer=("roddelmethode", "supervisie"))
    try:
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "'supervisie'" in warnings[0] and "not offered" in warnings[0]
        table.said()
        table.double()
        assert table.said() == [choice("Roddelmethode", 60)], "the offer's order, after the configured method"
        table.double()
        assert table.said() == [choice("Intervisie", 50)], "incidentmethode is installed but not offered"
    finally:
        table.close()


def test_the_configured_method_is_first_even_from_outside_the_folder(tmp_path: Path, methods: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    own = load_method(str(method_file(elsewhere, "eigen", "eigen methode", 10)), "nl")
    ids = [m.id for m in installed_methods(own, "nl", [methods])]
    assert ids == ["eigen", "incidentmethode", "intervisie", "roddelmethode"]


def test_a_broken_method_file_is_one_warning_naming_it_and_the_rest_go_on(
    tmp_path: Path, methods: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (methods / "kapot.toml").write_bytes(b'id = "kapot"\n[[phases]\nminutes = \xff')
    (methods / "groot.toml").write_text("# " + "x" * 300_000 + "\n")
    (methods / "zonder-fasen.toml").write_text('id = "leeg"\nname.nl = "leeg"\n')
    os.mkfifo(methods / "pijp.toml")  # read, it would wait for a writer
    (methods / "link.toml").symlink_to(methods / "roddelmethode.toml")
    method_file(methods, "open", "open", 10).chmod(0o666)
    configured = load_method(str(methods / "intervisie.toml"), "nl")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        ids = [m.id for m in installed_methods(configured, "nl", [methods])]
    assert time.monotonic() - started < 2, "no file is waited for"
    assert ids == ["intervisie", "incidentmethode", "roddelmethode"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    expected = {
        "kapot.toml": "not valid UTF-8",
        "groot.toml": "larger than 256,000 bytes",
        "zonder-fasen.toml": "phases",
        "pijp.toml": "not a plain file",
        "link.toml": "a link",
        "open.toml": "any user may change it",
    }
    assert len(warnings) == len(expected), warnings
    for name, why in expected.items():
        [line] = [w for w in warnings if f"/{name}" in w]
        assert why in line and "not offered" in line and "\n" not in line


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_method_file_is_left_out(tmp_path: Path, methods: Path, caplog: pytest.LogCaptureFixture) -> None:
    os.chown(method_file(methods, "vreemd", "vreemd", 10), 4242, 4242)
    configured = load_method(str(methods / "intervisie.toml"), "nl")
    with caplog.at_level(logging.WARNING):
        ids = [m.id for m in installed_methods(configured, "nl", [methods])]
    assert "vreemd" not in ids and len(ids) == 3
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "vreemd.toml" in warning and "another user" in warning


def test_two_files_with_one_id_offer_the_first_only(tmp_path: Path, methods: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(methods / "roddelmethode.toml", methods / "zz-kopie.toml")
    configured = load_method(str(methods / "intervisie.toml"), "nl")
    with caplog.at_level(logging.WARNING):
        ids = [m.id for m in installed_methods(configured, "nl", [methods])]
    assert ids == ["intervisie", "incidentmethode", "roddelmethode"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "zz-kopie.toml" in warning and "already used" in warning


def test_with_one_method_the_double_press_says_what_it_always_said(
    tmp_path: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock]
) -> None:
    folder = tmp_path / "methods"
    folder.mkdir()
    shutil.copy(SHIPPED_METHOD, folder / "intervisie.toml")
    table = Table(tmp_path / "data", folder, pins, clocks)
    try:
        said = table.said()
        assert not any("methode" in s for s in said), "no word of choosing in the greeting"
        table.double()
        assert table.said() == ["We zijn nog niet begonnen. Druk op de knop om te beginnen."]
        table.press()
        assert table.session.method.id == "intervisie"
    finally:
        table.close()


# --- by voice ---------------------------------------------------------------------------


def test_methode_said_chooses_that_method_and_says_it(table: Table) -> None:
    table.said()
    table.daemon.step(VoiceCommand(command="method:roddelmethode"))
    assert table.said() == [choice("Roddelmethode", 60)]
    assert "press" in table.speaker.tones, "the same tone as a press"
    table.daemon.step(VoiceCommand(command="next"))  # "volgende fase" starts it, as a press does
    assert table.session.status == RUNNING and table.session.method.id == "roddelmethode"


def test_methode_said_during_a_session_changes_nothing(table: Table) -> None:
    table.press()
    table.said()
    lines = table.daemon.journal.path.read_text().count("\n")
    table.daemon.step(VoiceCommand(command="method:roddelmethode"))
    assert table.said() == [] and table.session.method.id == "intervisie"
    assert table.daemon.journal.path.read_text().count("\n") == lines, "nothing journaled"


class _Model:
    """Knows every word but ``unknown`` (as ``vosk_model_find_word`` tells)."""

    def __init__(self, unknown: set[str]) -> None:
        self.unknown = unknown

    def vosk_model_find_word(self, word: str) -> int:
        return -1 if word in self.unknown else 1


class _Recognizer:
    """Gives back the scripted texts, one per block of audio."""

    texts: list[str] = []
    grammars: list[str | None] = []

    def __init__(self, model: Any, rate: float, grammar: str | None) -> None:
        _Recognizer.grammars.append(grammar)

    def AcceptWaveform(self, block: bytes) -> bool:  # noqa: N802 - Vosk's name
        return True

    def Result(self) -> str:  # noqa: N802
        return json.dumps({"text": _Recognizer.texts.pop(0)})

    def FinalResult(self) -> str:  # noqa: N802
        return json.dumps({"text": ""})

    def PartialResult(self) -> str:  # noqa: N802
        return json.dumps({"partial": ""})

    def Reset(self) -> None:  # noqa: N802
        pass


def test_the_grammar_holds_the_offered_method_names_and_an_unknown_name_is_no_command(table: Table) -> None:
    commands = {**table.daemon.phrases.table("commands"), **table.daemon.chooser.voice_commands()}
    _Recognizer.grammars.clear()
    _Recognizer.texts[:] = ["methode roddelmethode", "methode supervisie", "methode incidentmethode"]
    events: list[Event] = []
    transcriber = Transcriber(
        _Model({"incidentmethode"}), ListeningSettings(voice_commands=True), events.append, commands,
        recognizer_factory=_Recognizer,
    )
    grammar = json.loads(next(g for g in _Recognizer.grammars if g is not None))
    assert {"methode roddelmethode", "methode intervisie", "volgende fase"} <= set(grammar)
    assert "methode incidentmethode" not in grammar, "a word the model does not know is left out"
    for _ in range(3):
        transcriber.feed(bytes(3200))
    assert events == [VoiceCommand(command="method:roddelmethode")], "not the unknown name, nor the word the model lacks"


def test_with_one_method_no_method_names_are_in_the_grammar(tmp_path: Path) -> None:
    folder = tmp_path / "methods"
    folder.mkdir()
    shutil.copy(SHIPPED_METHOD, folder / "intervisie.toml")
    method: Method = load_method(str(folder / "intervisie.toml"), "nl")
    daemon = Daemon(Settings(data_dir=str(tmp_path / "data")), method, load_phrases("nl"), Recorder(), None,
                    SessionClock(1.0), methods=installed_methods(method, "nl", [folder]))
    assert daemon.chooser.voice_commands() == {}


# --- after a restart ----------------------------------------------------------------------


def test_a_session_resumed_after_a_power_cut_goes_on_with_its_own_method(
    tmp_path: Path, methods: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock]
) -> None:
    table = Table(tmp_path / "data", methods, pins, clocks)
    table.double()  # incidentmethode
    table.press()
    table.wait(10 * MIN)
    table.close()  # the power goes
    table = Table(tmp_path / "data", methods, pins, clocks)
    try:
        assert table.session.method.id == "incidentmethode"
        assert table.said()[0].startswith("Ik was even uitgevallen. We gaan verder met fase 1: het incident. Nog 19 minuten")
        for minutes in (19, *ORDINARY[1:]):
            table.wait(minutes * MIN)
            table.press()
        record = table.daemon.finished_records[-1]
        assert record["method"] == "incidentmethode" and record["phases"][0]["name"] == "het incident"
        assert table.session.method.id == "intervisie", "the next session starts from the configured one"
    finally:
        table.close()


def test_a_session_stopped_on_purpose_is_offered_with_its_own_method(
    tmp_path: Path, methods: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock]
) -> None:
    table = Table(tmp_path / "data", methods, pins, clocks)
    table.double()
    table.double()  # roddelmethode
    table.press()
    table.wait(3 * MIN)
    table.daemon.stop()
    table.daemon.run()  # the loop ends at once and writes the stop
    table.close()
    table = Table(tmp_path / "data", methods, pins, clocks)
    try:
        assert table.said() == [
            "De vorige sessie is gestopt in fase 1: de roddel. Druk kort op de knop om verder te gaan, of houd de knop "
            "lang ingedrukt om een nieuwe sessie te beginnen."
        ]
        table.double()
        assert table.said()[0].startswith("De vorige sessie is gestopt"), "during the offer nothing is chosen"
        table.press()
        assert table.session.method.id == "roddelmethode"
        assert table.said()[0] == "We gaan verder met fase 1: de roddel. Nog 12 minuten."
    finally:
        table.close()


def test_a_session_whose_method_is_gone_is_kept_as_unfinished_not_replayed(
    tmp_path: Path, methods: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = Table(tmp_path / "data", methods, pins, clocks)
    table.double()  # incidentmethode
    table.press()
    session_id = table.daemon.session_id
    table.wait(6 * MIN)
    table.close()  # the power goes, and the method file is taken away
    (methods / "incidentmethode.toml").unlink()
    with caplog.at_level(logging.WARNING):
        table = Table(tmp_path / "data", methods, pins, clocks)
    try:
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "'incidentmethode'" in warnings[0] and "no longer installed" in warnings[0]
        assert table.session.status == IDLE and table.session.method.id == "intervisie"
        assert table.said()[0].startswith("Hallo, ik ben klaar voor de intervisie.")
        record = json.loads((tmp_path / "data" / "records" / f"{session_id}.json").read_text())
        assert record["method"] == "incidentmethode" and record["finished"] is False and record["phases"] == []
        assert not table.daemon.journal.path.exists(), "the journal is closed, not replayed later"
    finally:
        table.close()


# --- the real command -------------------------------------------------------------------


@pytest.mark.slow  # the daemon as a process
def test_intervisie_run_offers_the_methods_of_its_configuration_folder(tmp_path: Path, alsa_files: Any) -> None:
    from tests.support import Daemon as Process

    own = tmp_path / "config" / "methods"
    own.mkdir(parents=True)
    method_file(own, "incidentmethode", "incidentmethode", 29, "het incident")
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{tmp_path / "data"}"\n[methods]\noffer = ["incidentmethode"]\n'
        f'[listening]\nmodel = "{tmp_path / "no-model"}"\n'
    )
    daemon = Process(tmp_path, "--speed", "60", env={"INTERVISIE_CONFIG_DIR": str(tmp_path / "config")})
    try:
        daemon.expect("say [method_hint]")
        daemon.key("d")
        assert "Incidentmethode, 74 minuten. Druk op de knop om te beginnen." in daemon.expect("say [method_choice]")
        daemon.key("")
        assert "De incidentmethode duurt ongeveer 74 minuten." in daemon.expect("say [start]")
        assert "Fase 1: het incident." in daemon.expect("say [phase]")
        daemon.key("q")
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()


def test_only_a_method_the_group_stays_with_has_its_phrases_prepared(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prepared phrases are kept for the whole run: going round must not keep every method's."""
    import assistant.service.daemon

    monkeypatch.setattr(assistant.service.daemon, "_CHOICE_SETTLES", 0.3)
    table.daemon.step(DoublePress())  # incidentmethode, passed at once
    table.daemon.step(DoublePress())  # roddelmethode, where the group stays
    end = time.monotonic() + PATIENCE
    while not any("de roddel" in t for t in table.speaker.prepared) and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    assert any("Fase 1: de roddel" in t for t in table.speaker.prepared)
    assert not any("het incident" in t for t in table.speaker.prepared)
