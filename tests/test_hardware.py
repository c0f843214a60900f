"""Checks on a real Raspberry Pi: its GPIO button, its speaker, and its microphone with the
Dutch speech model.

These need a person at the table, so they run only with ``--hardware`` (and then alone):

    ./run-tests --hardware -s

They use the configuration the service uses (``/etc/intervisie/config.toml`` or
``~/.config/intervisie/config.toml``). The same code runs on every machine in the
other tests, on gpiozero's MockFactory and ALSA's file plugin.
"""

from __future__ import annotations

import queue

import pytest

from assistant.audio.speaker import AudioSpeaker
from assistant.config import load_phrases, load_settings, user_config_path
from assistant.core.events import ButtonDown, DoublePress, Event, LongPress, Press
from assistant.hardware.button import GpioButton

pytestmark = pytest.mark.hardware

WAIT = 30.0


def _settings():
    return load_settings(user_config_path())


def _gesture(button_events: queue.Queue[Event], prompt: str) -> Event:
    print(f"\n>>> {prompt} (within {WAIT:g} s)", flush=True)
    while True:
        event = button_events.get(timeout=WAIT)
        if not isinstance(event, ButtonDown):
            return event


def test_the_speaker_says_a_sentence_out_loud() -> None:
    settings = _settings()
    speaker = AudioSpeaker(settings.speech, settings.language)
    try:
        speaker.say(load_phrases(settings.language).say("test_sentence"))
        assert speaker.wait_idle(30)
        assert speaker.last_audio_started is not None
        assert speaker.last_audio_ended is not None
        assert speaker.last_audio_ended - speaker.last_audio_started > 0.5
    finally:
        speaker.close()
    print(f"\n>>> You should have heard the test sentence on {speaker.player.device_name}.")


def test_the_gpio_button_gives_all_three_gestures() -> None:
    events: queue.Queue[Event] = queue.Queue()
    button = GpioButton(_settings().button, events.put)
    try:
        assert isinstance(_gesture(events, "Press the button once, briefly"), Press)
        assert isinstance(_gesture(events, "Press the button twice, quickly"), DoublePress)
        assert isinstance(_gesture(events, "Hold the button down for two seconds"), LongPress)
    finally:
        button.close()


def test_the_dutch_model_knows_every_voice_command_word() -> None:
    import vosk

    from assistant.audio.model import vocabulary_check

    settings = _settings()
    path = settings.model_path()
    assert path.is_dir(), f"no speech model at {path}: run `intervisie model install`"
    vosk.SetLogLevel(-1)
    model = vosk.Model(str(path))
    checked = vocabulary_check(model, load_phrases(settings.language).table("commands"))
    assert checked
    assert [(phrase, unknown) for phrase, _name, unknown in checked if unknown] == []


def test_a_leervraag_said_into_the_microphone_is_written_down() -> None:
    from assistant.audio.listener import Listener
    from assistant.core.events import Heard, ListenerState

    settings = _settings()
    events: queue.Queue[Event] = queue.Queue()
    listener = Listener(settings.listening, settings.model_path(), events.put, None)
    listener.start()
    try:
        deadline = WAIT * 4
        while True:
            event = events.get(timeout=deadline)
            if isinstance(event, ListenerState) and event.state != "loading":
                assert event.state == "ready", f"the listener is {event.state}: {event.detail}"
                break
        print("\n>>> Say clearly: 'hoe kan ik rust brengen in mijn klas' and then stay quiet", flush=True)
        listener.capture("leervraag", continuous=False)
        while True:
            event = events.get(timeout=settings.listening.max_seconds + WAIT)
            if isinstance(event, Heard):
                break
    finally:
        listener.close()
    print(f">>> The device wrote down: {event.text!r}")
    assert event.kind == "leervraag"
    words = set(event.text.split())
    assert len(words & {"hoe", "kan", "ik", "rust", "brengen", "in", "mijn", "klas"}) >= 5, event.text
