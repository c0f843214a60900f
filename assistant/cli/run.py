"""``intervisie run``, ``check`` and ``say``: the device itself, and its self-test.
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
import time

from assistant.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, load_all
from assistant.command import command
from assistant.core.settings import Settings

log = logging.getLogger(__name__)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM, SIGINT or the quit key."""
    settings, method, phrases = load_all(args)
    # Imported only now so that `--help` and configuration errors stay fast and light.
    from assistant.service.app import run_daemon

    run_daemon(settings, method, phrases, args.speed)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Self-test: list audio devices, speak a test sentence, wait for a button press."""
    settings, _method, phrases = load_all(args)
    from assistant.audio.player import output_devices

    problems: list[str] = []
    devices = output_devices()
    print("Audio output devices:")
    for line in devices or ["(none found)"]:
        print(f"  {line}")
    problems.extend(_check_speech(settings, phrases.say("test_sentence")))
    problems.extend(_check_listening(settings))
    problems.extend(_check_printer(settings))
    problems.extend(_check_button(settings, args.timeout))
    if problems:
        print("Problems: " + "; ".join(problems))
        return EXIT_FAILURE
    print("All parts work.")
    return EXIT_OK


def _check_speech(settings: Settings, sentence: str) -> list[str]:
    """Say the test sentence on the speaker, or print it when there is none; the problems found.

    The speaker is made here rather than with ``make_speaker``, whose warning points the
    user to this very check.
    """
    from assistant.audio.speaker import AudioSpeaker, ConsoleSpeaker, Speaker
    from assistant.errors import AudioDeviceError, SpeechError

    problems = []
    speaker: Speaker
    try:
        speaker = AudioSpeaker(settings.speech, settings.language)
        print("Speech: speaking a test sentence now.")
    except (AudioDeviceError, SpeechError) as exc:
        problems.append(f"no usable audio output ({exc})")
        print(f"Speech: NOT on a speaker ({exc}); the test sentence follows as text.")
        speaker = ConsoleSpeaker()
    try:
        speaker.say(sentence)
        speaker.wait_idle(30)
    finally:
        speaker.close()
    return problems


def _check_printer(settings: Settings) -> list[str]:
    """Whether the receipt printer can be written to (nothing is printed); the problems found."""
    from assistant.hardware.printer import PrinterError, probe

    printer = settings.printer
    if not printer.enabled:
        print("Printer: none set up ([printer] enabled = false).")
        return []
    try:
        probe(printer.device)
    except PrinterError as exc:
        print(f"Printer: NOT ready: {exc}.")
        return [f"the printer is not ready ({exc})"]
    print(f"Printer: {printer.device} takes data; '{command('print')}' prints the newest session's slip.")
    return []


def _check_button(settings: Settings, timeout: float) -> list[str]:
    """Wait up to ``timeout`` seconds for a gesture of the button; the problems found.

    The keyboard standing in for it stops reading when its input ends (standard input
    closed or /dev/null): no press can come then, so the check says so at once instead
    of waiting out the time.
    """
    from assistant.core.events import ButtonDown, DoublePress, Event, LongPress
    from assistant.hardware.button import KeyboardButton, make_button

    gestures: queue.Queue[Event] = queue.Queue()
    button = make_button(settings.button, gestures.put, lambda: None)
    if isinstance(button, KeyboardButton):
        print(f"Button: the keyboard stands in for it. Press Enter within {timeout:g} s ...", flush=True)
    else:
        print(f"Button: GPIO pin {settings.button.pin}. Press the button within {timeout:g} s ...", flush=True)
    names = {DoublePress: "a double press", LongPress: "a long press"}
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            ended = isinstance(button, KeyboardButton) and button.wait_closed(0)
            try:
                # After the reader ended only what it posted before is left to take.
                event = gestures.get(timeout=0 if ended else max(0.0, min(left, 0.1)))
            except queue.Empty:
                if ended:
                    print("Button: no press can come: the keyboard input has ended (is standard input closed?).")
                    return ["the keyboard input ended before a press (run the check in a terminal)"]
                if left <= 0:
                    print("Button: no press seen.")
                    return [f"no button press within {timeout:g} s"]
                continue
            if not isinstance(event, ButtonDown):
                print(f"Button: OK ({names.get(type(event), 'a short press')} seen)")
                return []
    finally:
        button.close()


def _check_listening(settings: Settings) -> list[str]:
    """Print the microphones and the speech model's state; the problems found."""
    if not settings.listening.enabled:
        print("Speech recognition: switched off ([listening] enabled = false).")
        return []
    from assistant.audio.microphone import input_devices
    from assistant.vosk_models.check import check_model

    problems = []
    microphones = input_devices()
    print("Audio input devices (microphones):")
    for line in microphones or ["(none found)"]:
        print(f"  {line}")
    if not microphones:
        problems.append("no microphone: the device cannot take notes")
    result = check_model(settings.model_path())
    if result.problems:
        print(f"Speech model: NOT usable at {result.path}:")
        for line in result.problems:
            print(f"  {line}")
        install = "model install" if settings.language == "nl" else f"model install --lang {settings.language}"
        problems.append(f"no usable speech model (install it with `{command(install)}`)")
    else:
        print(f"Speech model: OK ({result.path})")
    return problems


EXIT_NOT_PLAYED = 3
"""``say``: nothing was played (no usable sound output or espeak-ng: the text went to the console)."""
EXIT_CHIME = 4
"""``say``: espeak-ng could not render the text; the speaker played a chime instead."""

SAY_EXIT_CODES = """exit codes:
  0  the text was spoken on the speaker
  1  another error (one line says which)
  2  the text is empty, or an option or a configuration file is wrong
  3  nothing was played: no usable sound output or espeak-ng (the text went to the console)
  4  espeak-ng could not render the text: the speaker played a chime instead"""
"""What ``intervisie say --help`` shows after the options."""


def cmd_say(args: argparse.Namespace) -> int:
    """Say a sentence with the configured voice, wait until it is spoken, and tell by the
    exit code what happened (:data:`SAY_EXIT_CODES`): a script or a person checking the
    speaker must not take the console or a chime for speech."""
    text = " ".join(args.text).strip()
    if not text:
        print("intervisie: nothing to say: the text is empty", file=sys.stderr)
        return EXIT_CONFIG
    settings, _method, _phrases = load_all(args)
    from assistant.audio.lengths import expected_seconds
    from assistant.audio.speaker import AudioSpeaker, make_speaker
    from assistant.errors import SpeechError

    speaker = make_speaker(settings.speech, settings.language)
    try:
        if not isinstance(speaker, AudioSpeaker):  # the console (logged)
            speaker.say(text)
            return EXIT_NOT_PLAYED
        try:
            speaker.clip(text)  # rendered (and checked) now; say() plays this very rendering
            rendered = True
        except SpeechError:
            rendered = False  # logged by the speaker; say() plays its chime instead
        speaker.say(text)
        speaker.wait_idle(30 + 2 * expected_seconds(text, settings.speech.rate))
        if speaker.last_audio_started is None:
            return EXIT_NOT_PLAYED  # the sound device failed (logged)
        return EXIT_OK if rendered else EXIT_CHIME
    finally:
        speaker.close()
