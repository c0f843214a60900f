"""The daemon's wiring: makes the speaker, journal, LED, listener, button and notifier,
runs the daemon and closes everything again.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from assistant import memory
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import Settings
from assistant.errors import JournalError

log = logging.getLogger(__name__)


def run_daemon(settings: Settings, method: Method, phrases: Phrases, speed: float = 1.0) -> None:
    """Run the daemon until SIGTERM, SIGINT or the quit key, then close every part."""
    memory.fewer_malloc_arenas()
    from assistant.audio.speaker import make_speaker
    from assistant.core.clock import SessionClock
    from assistant.hardware.button import make_button
    from assistant.hardware.led import make_led
    from assistant.service.daemon import Daemon
    from assistant.service.systemd import Notifier
    from assistant.storage.journal import Journal

    # The daemon keeps its speaker even without an output device or espeak-ng: it
    # recovers when they come back (and says the phase and time left then).
    speaker = make_speaker(settings.speech, settings.language, keep_trying=True)
    journal: Journal | None
    try:
        journal = Journal(settings.data_path())
    except JournalError as exc:
        log.error("%s; sessions will not be kept or resumed", exc)
        journal = None
    notifier = Notifier()
    led = make_led(settings.led)
    daemon = Daemon(settings, method, phrases, speaker, journal, SessionClock(speed), notifier, led)
    listener = make_listener(settings, phrases, daemon.post, speaker)
    daemon.listener = listener
    button = make_button(settings.button, daemon.post, daemon.stop)
    # SIGHUP (the terminal closed) and SIGQUIT end it as cleanly as SIGTERM and Ctrl-C.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, lambda *_: daemon.stop())
    if speed != 1:
        log.info("running %g times faster than real time", speed)
    try:
        if listener is not None:
            listener.start()  # returns at once: the model loads while the device speaks
        daemon.start_up()
        daemon.run()
    finally:
        button.close()
        if listener is not None:
            listener.close()
        if led is not None:
            led.close()
        speaker.close()
        notifier.close()


def make_listener(settings: Settings, phrases: Phrases, post: Any, speaker: Any) -> Any:
    """The microphone and recogniser, or None when listening is switched off or impossible."""
    from assistant.core.events import ListenerState

    if not settings.listening.enabled:
        log.info("speech recognition is switched off ([listening] enabled = false)")
        post(ListenerState("off", "switched off in the configuration"))
        return None
    try:
        from assistant.audio.listener import Listener
    except (ImportError, OSError) as exc:  # vosk or PortAudio missing: keep time without notes
        log.warning("speech recognition is not available (%s); the device keeps time without taking notes", exc)
        post(ListenerState("no_model", str(exc)))
        return None
    commands = phrases.table("commands") if settings.listening.voice_commands else None
    # A rescan for a newly plugged-in microphone invalidates the speaker's stream too: the
    # speaker's player reopens it by itself (it registered with devices.on_rescan).
    return Listener(settings.listening, settings.model_path(), post, speaker, commands=commands)
