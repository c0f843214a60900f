"""The volume at the table: the knob (gpiozero's RotaryEncoder on mock pins) and
"harder" / "zachter", heard at once, kept across restarts, between the bounds, and never
part of the session."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory
from support import AlsaFiles, Device, Recorder

from assistant.audio.model import command_phrases
from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import DoublePress, Event, LongPress, Press, VoiceCommand, VolumeStep
from assistant.core.settings import KnobSettings, Settings, SpeechSettings
from assistant.hardware.knob import VolumeKnob, make_knob
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal
from assistant.storage.volume import MAX_VOLUME_BYTES, VOLUME_FILE

PATIENCE = 10.0
METHODS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "config" / "methods").glob("*.toml"))
KNOB = KnobSettings(enabled=True, pin_a=5, pin_b=6)
TONE_PEAK = 0.4 * 32767
"""The volume tone's peak at level 1.0 (:data:`assistant.audio.tones.TONE_LEVEL`)."""


# --------------------------------------------------------------------------- helpers


def turn(pins: MockFactory, detents: int, a: int = 5, b: int = 6) -> None:
    """Turn the encoder by ``detents`` (negative: counter-clockwise), one quadrature cycle
    each: clockwise A falls before B, counter-clockwise B before A (pulled up: low is active)."""
    first, second = (pins.pin(a), pins.pin(b)) if detents > 0 else (pins.pin(b), pins.pin(a))
    for _ in range(abs(detents)):
        first.drive_low()
        second.drive_low()
        first.drive_high()
        second.drive_high()


def settings_for(data: Path, **speech: Any) -> Settings:
    return Settings(data_dir=str(data), speech=SpeechSettings(**speech), knob=KNOB)


def clocks() -> tuple[FakeClock, FakeClock]:
    return FakeClock(1000.0), FakeClock(1_800_000_000.0)


def handle_posted(daemon: Daemon, quiet: float = 0.5) -> list[Event]:
    """Hand what the knob posted to the daemon, as its loop would, until nothing came for ``quiet`` s."""
    handled = []
    while True:
        try:
            event = daemon._events.get(timeout=quiet)
        except queue.Empty:
            return handled
        if event is not None:
            daemon.step(event)
            handled.append(event)


def kept(data: Path) -> Any:
    return json.loads((data / VOLUME_FILE).read_text())


def peak(samples: np.ndarray) -> int:
    return int(np.abs(samples.astype(np.int32)).max())


def volume_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --------------------------------------------------------------------------- the knob


def test_each_detent_is_one_step_and_a_quick_turn_is_not_a_flood_of_events(pins: MockFactory) -> None:
    posted: queue.Queue[Event] = queue.Queue()
    knob = VolumeKnob(KNOB, posted.put, coalesce_seconds=0.2)
    try:
        turn(pins, 5)
        first = posted.get(timeout=1)
        assert first == VolumeStep(1), "the first detent is posted at once"
        rest = posted.get(timeout=1)
        assert rest == VolumeStep(4), "the detents of the same quick turn come together"
        time.sleep(0.3)
        turn(pins, -2)
        assert posted.get(timeout=1) == VolumeStep(-1)
        assert posted.get(timeout=1) == VolumeStep(-1)
        time.sleep(0.3)
        assert posted.empty()
    finally:
        knob.close()


def test_no_knob_configured_opens_no_pins(pins: MockFactory) -> None:
    assert make_knob(KnobSettings(), lambda event: None) is None
    assert not pins.pins, "no gpiozero pin was opened for a knob that is not there"


def test_knob_pins_that_cannot_be_opened_are_one_warning(pins: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    taken = Button(5)  # the pin is in use by something else
    try:
        with caplog.at_level(logging.INFO):
            assert make_knob(KNOB, lambda event: None) is None
    finally:
        taken.close()
    warnings = volume_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "volume knob on BCM pins 5 and 6" in warnings[0] and "carrying on without the volume knob" in warnings[0]
    assert "\n" not in warnings[0]


# --------------------------------------------------------------------------- through the daemon


def test_the_knob_steps_between_the_bounds_and_says_so_at_each_bound(tmp_path: Path, pins: MockFactory) -> None:
    device = Device(tmp_path, *clocks(), settings=settings_for(tmp_path, volume=0.8, volume_min=0.5, volume_max=1.0))
    knob = VolumeKnob(KNOB, device.daemon.post)
    recorder: Recorder = device.speaker
    try:
        recorder.said.clear()
        turn(pins, 1)
        handle_posted(device.daemon)
        assert device.daemon.volume.level == 0.9 and recorder.tones == ["volume"] and not recorder.said
        turn(pins, 4)  # one to the top, then past it
        handle_posted(device.daemon)
        assert device.daemon.volume.level == 1.0
        assert recorder.said == ["Harder kan niet."], "past the top: the bound sentence, once for the whole turn"
        recorder.said.clear()
        turn(pins, -9)  # a quick turn down to the bottom: a tone at the new level, nothing said
        handle_posted(device.daemon)
        assert device.daemon.volume.level == 0.5 and not recorder.said
        turn(pins, -1)
        handle_posted(device.daemon)
        assert recorder.said == ["Zachter kan niet."]
        assert kept(tmp_path) == {"volume": 0.5}
    finally:
        knob.close()


def test_harder_and_zachter_step_like_the_knob_and_stop_at_the_bounds(tmp_path: Path) -> None:
    device = Device(tmp_path, *clocks(), settings=settings_for(tmp_path, volume=0.3, volume_min=0.2, volume_max=0.5))
    recorder: Recorder = device.speaker
    recorder.said.clear()
    levels = []
    for command in ("louder", "louder", "louder", "softer", "softer", "softer", "softer"):
        device.do(VoiceCommand(command))
        levels.append(device.daemon.volume.level)
    assert levels == [0.4, 0.5, 0.5, 0.4, 0.3, 0.2, 0.2]
    assert recorder.said == ["Harder kan niet.", "Zachter kan niet."]
    assert recorder.tones.count("volume") == 5
    assert "press" not in recorder.tones, "a volume command does not cut speech like the session's commands"


def test_the_commands_are_in_the_grammar_of_both_languages() -> None:
    class Model:
        def vosk_model_find_word(self, word: str) -> int:
            return 1

    dutch = command_phrases(Model(), load_phrases("nl").table("commands"))
    english = command_phrases(Model(), load_phrases("en").table("commands"))
    assert dutch["harder"] == "louder" and dutch["zachter"] == "softer"
    assert english["louder"] == "louder" and english["softer"] == "softer"


def test_the_level_survives_a_restart(tmp_path: Path, pins: MockFactory) -> None:
    settings = settings_for(tmp_path, volume=0.5)
    first = Device(tmp_path, *clocks(), settings=settings)
    knob = VolumeKnob(KNOB, first.daemon.post)
    try:
        turn(pins, 1)
        handle_posted(first.daemon)
        time.sleep(0.3)
        turn(pins, 1)
        handle_posted(first.daemon)
    finally:
        knob.close()
    assert first.daemon.volume.level == 0.7
    path = tmp_path / VOLUME_FILE
    assert kept(tmp_path) == {"volume": 0.7}
    assert path.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".volume.json*")), "no temporary file is left"
    again = Device(tmp_path, *clocks(), settings=settings)
    assert again.daemon.volume.level == 0.7


# --------------------------------------------------------------------------- heard, in the played samples


def _real_daemon(data: Path, settings: Settings) -> tuple[Daemon, Any]:
    from assistant.audio.speaker import AudioSpeaker

    speaker = AudioSpeaker(settings.speech, "nl")
    daemon = Daemon(settings, load_method("intervisie", "nl"), load_phrases("nl"), speaker, Journal(data), SessionClock(1.0))
    return daemon, speaker


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "step", "level"),
    [("knob", 1, 0.6), ("knob", -1, 0.4), ("voice", 1, 0.6), ("voice", -1, 0.4)],
    ids=["knob-clockwise", "knob-counter-clockwise", "harder", "zachter"],
)
def test_a_step_is_heard_at_once_and_the_next_speech_is_one_step_louder_or_softer(
    tmp_path: Path, pins: MockFactory, alsa_files: AlsaFiles, how: str, step: int, level: float
) -> None:
    settings = settings_for(tmp_path, volume=0.5)
    daemon, speaker = _real_daemon(tmp_path, settings)
    knob = VolumeKnob(KNOB, daemon.post)
    loop = threading.Thread(target=daemon.run, daemon=True)
    loop.start()
    text = "Stilte."
    try:
        speaker.say(text)
        assert speaker.wait_idle(PATIENCE)
        if how == "knob":
            turn(pins, step)
        else:
            daemon.post(VoiceCommand("louder" if step > 0 else "softer"))
        deadline = time.monotonic() + PATIENCE
        while daemon.volume.level != level and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert speaker.wait_idle(PATIENCE)
        speaker.say(text)
        assert speaker.wait_idle(PATIENCE)
        speech_length = len(speaker.clip(text))
        tone_length = len(speaker.player.tone_samples("volume"))
    finally:
        daemon.stop()
        loop.join(PATIENCE)
        knob.close()
        speaker.close()
    out = np.fromfile(alsa_files.out, dtype="<i2")
    assert len(out) == 2 * speech_length + tone_length, "the speech, the tone, the speech again: nothing else"
    before, tone, after = out[:speech_length], out[speech_length:-speech_length], out[-speech_length:]
    print(f"{how} {step:+d}: speech peak {peak(before)} at 0.5, tone peak {peak(tone)} and speech peak {peak(after)} at {level}")
    assert peak(tone) == pytest.approx(TONE_PEAK * level, abs=2), "the tone is heard at the new level"
    assert peak(after) / peak(before) == pytest.approx(level / 0.5, abs=0.005)
    assert kept(tmp_path) == {"volume": level}


@pytest.mark.slow
def test_after_a_restart_the_device_speaks_at_the_kept_level(tmp_path: Path, alsa_files: AlsaFiles) -> None:
    (tmp_path / VOLUME_FILE).write_text('{"volume": 0.3}\n')
    os.chmod(tmp_path / VOLUME_FILE, 0o600)
    daemon, speaker = _real_daemon(tmp_path, settings_for(tmp_path, volume=1.0))
    try:
        assert daemon.volume.level == 0.3
        speaker.say("Stilte.")
        assert speaker.wait_idle(PATIENCE)
        speaker.volume = 1.0
        full = speaker.clip("Stilte.")
    finally:
        speaker.close()
    out = np.fromfile(alsa_files.out, dtype="<i2")
    assert peak(out) / peak(full) == pytest.approx(0.3, abs=0.005)


# --------------------------------------------------------------------------- a hostile volume file


def _link_elsewhere(data: Path) -> None:
    elsewhere = data.parent / "elsewhere.json"
    elsewhere.write_text('{"volume": 0.3}')
    (data / VOLUME_FILE).symlink_to(elsewhere)


def _someone_elses(data: Path) -> None:
    (data / VOLUME_FILE).write_text('{"volume": 0.3}')
    os.chown(data / VOLUME_FILE, 65534, 65534)


HOSTILE = {
    "damaged": lambda d: (d / VOLUME_FILE).write_bytes(b'{"volume": 0.'),
    "not a number": lambda d: (d / VOLUME_FILE).write_text('{"volume": "loud"}'),
    "nan": lambda d: (d / VOLUME_FILE).write_text('{"volume": NaN}'),
    "something else in it": lambda d: (d / VOLUME_FILE).write_text('{"volume": 0.3, "session": "x"}'),
    "invalid utf-8": lambda d: (d / VOLUME_FILE).write_bytes(b'{"volume": 0.3}\xff'),
    "huge": lambda d: (d / VOLUME_FILE).write_bytes(b'{"volume": 0.3' + b" " * 5_000_000 + b"}"),
    "a fifo": lambda d: os.mkfifo(d / VOLUME_FILE),
    "a folder": lambda d: (d / VOLUME_FILE).mkdir(),
    "a link to elsewhere": _link_elsewhere,
    "too loud": lambda d: (d / VOLUME_FILE).write_text('{"volume": 7}'),
    "below the minimum": lambda d: (d / VOLUME_FILE).write_text('{"volume": 0.05}'),
    "someone else's": _someone_elses,
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_volume_file_is_one_line_and_the_configured_volume(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    if kind == "someone else's" and os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    HOSTILE[kind](data)
    result: list[Device] = []
    with caplog.at_level(logging.INFO):
        starting = threading.Thread(
            target=lambda: result.append(Device(data, *clocks(), settings=settings_for(data, volume=0.8))), daemon=True
        )
        starting.start()
        starting.join(PATIENCE)
    assert result, "the device started (no hang on the file)"
    device = result[0]
    warnings = volume_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "kept volume" in warnings[0] and "configured volume 0.8" in warnings[0], warnings[0]
    assert "\n" not in warnings[0] and "Traceback" not in caplog.text
    assert len(warnings[0]) < 300, "the 5 MB file is not quoted"
    assert device.daemon.volume.level == 0.8
    if kind == "a link to elsewhere":
        device.do(VolumeStep(-1))
        assert (tmp_path / "elsewhere.json").read_text() == '{"volume": 0.3}', "nothing was written through the link"
        assert not (data / VOLUME_FILE).is_symlink() and kept(data) == {"volume": 0.7}


def test_a_volume_file_at_the_size_limit_is_still_read(tmp_path: Path) -> None:
    text = '{"volume": 0.6}'
    (tmp_path / VOLUME_FILE).write_text(text + " " * (MAX_VOLUME_BYTES - len(text)))
    device = Device(tmp_path, *clocks(), settings=settings_for(tmp_path, volume=0.8))
    assert device.daemon.volume.level == 0.6


def test_a_volume_that_cannot_be_kept_is_one_warning_and_still_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    device = Device(tmp_path, *clocks(), settings=settings_for(tmp_path, volume=0.5))
    (tmp_path / VOLUME_FILE).mkdir()  # the rename onto it fails, every time
    (tmp_path / VOLUME_FILE / "x").touch()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            device.do(VolumeStep(1))
    warnings = volume_warnings(caplog)
    assert len(warnings) == 1 and "cannot keep the volume" in warnings[0], warnings
    assert device.daemon.volume.level == 0.8


# --------------------------------------------------------------------------- not part of the session


def _state(device: Device) -> tuple[Any, ...]:
    session = device.session
    run = session.current
    now = device.daemon.clock.now()
    return (
        session.status, session.paused, session.changes, len(session.runs),
        run.phase.number if run else None, run.left(now) if run else None, device.daemon.session_id,
        device.journal.path.read_bytes() if device.journal.path.exists() else b"",
    )


@pytest.mark.parametrize("method", METHODS)
def test_the_volume_never_changes_a_running_session_or_its_journal(tmp_path: Path, method: str) -> None:
    device = Device(tmp_path, *clocks(), settings=settings_for(tmp_path, volume=0.5))
    device.daemon.use_method(load_method(method, "nl"))
    volume_events: list[Event] = [VolumeStep(1), VolumeStep(-3), VoiceCommand("louder"), VoiceCommand("softer")]
    for gesture in (Press(), Press(), LongPress(), DoublePress(), LongPress(), Press(), Press()):
        device.do(gesture)
        device.wait(30)
        for event in volume_events:
            before = _state(device)
            device.do(event)
            assert _state(device) == before, f"{event} changed the session or its journal"
    journal = device.journal.path.read_text()
    assert "volume" not in journal and "louder" not in journal and "softer" not in journal
    assert kept(tmp_path) == {"volume": 0.1}, "the steps were taken (down to the bottom)"


@pytest.mark.slow  # the daemon as a process
def test_on_a_laptop_plus_and_minus_are_the_knob_and_the_level_is_kept(tmp_path: Path, alsa_files: AlsaFiles) -> None:
    from tests.support import Daemon as Process

    with Process(tmp_path, "--speed", "60") as daemon:
        daemon.expect("say [gestures]")
        daemon.key("-")
        daemon.expect("volume 1 -> 0.9")
        daemon.key("-")
        daemon.expect("volume 0.9 -> 0.8")
        daemon.key("+")
        daemon.expect("volume 0.8 -> 0.9")
        daemon.key("q")
        assert daemon.finish() == 0
    assert json.loads((tmp_path / "data" / VOLUME_FILE).read_text())["volume"] == 0.9, "kept for the next start"
