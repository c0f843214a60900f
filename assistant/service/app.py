"""The daemon's wiring: makes the speaker, journal, LED, listener, button and notifier,
runs the daemon and closes everything again.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import memory
from assistant.command import command
from assistant.core.headcount import group_commands
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import ListeningSettings, Settings
from assistant.errors import JournalError
from assistant.storage.files import FolderRefused, shown

if TYPE_CHECKING:
    from assistant.storage.journal import Journal
    from assistant.storage.lock import DataFolderLock

log = logging.getLogger(__name__)

ENGLISH_MODEL_EXAMPLE = "vosk-model-small-en-us-0.15"
"""A small English Vosk model on the model site (40 MB, Apache-2.0), named in the hint."""


def run_daemon(settings: Settings, method: Method, phrases: Phrases, speed: float = 1.0) -> None:
    """Run the daemon until SIGTERM, SIGINT or the quit key, then close every part."""
    memory.fewer_malloc_arenas()
    # A crash inside a C library (espeak-ng, PortAudio, Vosk) then leaves every thread's
    # Python stack in the log (stderr: the journal under systemd), not just "signal 11";
    # systemd starts the daemon again and the journal resumes the session.
    if not faulthandler.is_enabled():
        faulthandler.enable()
    from assistant.audio.speaker import make_speaker
    from assistant.config import installed_methods
    from assistant.core.clock import SessionClock
    from assistant.hardware.button import make_button
    from assistant.hardware.knob import make_knob
    from assistant.hardware.led import make_led
    from assistant.service.console import console_echo
    from assistant.service.daemon import Daemon
    from assistant.service.systemd import Notifier

    # First of all: a second daemon on the same data folder stops here, touching nothing.
    journal, lock = open_storage(settings.data_path())
    # The daemon keeps its speaker even without an output device or espeak-ng: it
    # recovers when they come back (and says the phase and time left then).
    speaker = make_speaker(settings.speech, settings.language, keep_trying=True)
    notifier = Notifier()
    led = make_led(settings.led)
    # Every installed method, each a few kB: the group chooses at the table ([methods] offer).
    methods = installed_methods(method, settings.language)
    daemon = Daemon(settings, method, phrases, speaker, journal, SessionClock(speed), notifier, led, methods=methods)
    daemon.echo = console_echo(daemon.session_time)  # in a terminal: what it says, readable
    # "we zijn met vijf" (assistant.core.headcount) is said by a group that counts itself.
    table_commands = {**daemon.chooser.voice_commands(), **daemon.available.voice_commands(), **group_commands(phrases)}
    listener = make_listener(settings, phrases, daemon.post, speaker, table_commands)
    daemon.listener = listener
    button = make_button(settings.button, daemon.post, daemon.stop)
    knob = make_knob(settings.knob, daemon.post)
    # SIGHUP (the terminal closed) and SIGQUIT end it as cleanly as SIGTERM and Ctrl-C.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, lambda *_: daemon.stop())
    if speed != 1:
        log.info("running %g times faster than real time", speed)
    _printer_at_start(settings)
    try:
        if listener is not None:
            listener.start()  # returns at once: the model loads while the device speaks
        daemon.start_up()
        daemon.run()
    finally:
        button.close()
        if knob is not None:
            knob.close()
        if listener is not None:
            listener.close()
        if led is not None:
            led.close()
        speaker.close()
        notifier.close()
        if lock is not None:
            lock.release()


def _printer_at_start(settings: Settings) -> None:
    """One line at start when the printer set up for the slip is not there now (it may be
    plugged in before the end of the session: the slip is tried then all the same)."""
    if not settings.printer.enabled:
        return
    from assistant.hardware.printer import PrinterError, probe

    try:
        probe(settings.printer.device)
    except PrinterError as exc:
        log.warning("%s; the slip is printed at the end of a session if the printer is there by then", exc)


def open_storage(data: Path) -> tuple[Journal | None, DataFolderLock | None]:
    """The journal in the data folder and the folder's lock; no journal when the folder is refused.

    A folder that is a link, shared with others or another user's is not used: the log
    says why once, the session goes on with everything kept in memory, the group hears
    at the first press that the session cannot be saved (as for a full disk), and saving
    is tried again quietly, so mending the folder brings it back. Raises
    :class:`~assistant.storage.lock.FolderBusy` when another daemon uses the folder, and
    :class:`FolderRefused` when root is asked to run in another user's folder (its files
    would be root's, and the service could not read them).
    """
    from assistant.storage.journal import Journal
    from assistant.storage.lock import FolderBusy, lock_data_folder

    lock: DataFolderLock | None = None
    unlocked: JournalError | None = None
    try:
        lock = lock_data_folder(data)
    except FolderBusy:
        raise
    except FolderRefused as exc:
        if exc.owner is not None and os.geteuid() == 0:
            raise FolderRefused(
                f"will not run as root in the data folder {shown(data)} of the user {exc.owner}: files made by "
                f"root there could not be read by {exc.owner}; run it as that user (sudo -u {exc.owner} "
                f"{command('run')} ...) or start the service (sudo systemctl start intervisie)",
                owner=exc.owner,
            ) from None
        # The group is told at the first press, as for a full disk, and saving is tried
        # again: nothing is read, written or deleted in the folder until it is mended.
        log.error("%s; nothing is kept or resumed while it is so", exc)
        refused = Journal(data)
        refused.refused_at_start = True
        return refused, None
    except JournalError as exc:
        unlocked = exc  # not writable (yet): the journal decides whether to wait for the disk
    try:
        journal = Journal(data)
    except JournalError as exc:
        log.error("%s; sessions will not be kept or resumed", exc)
        if lock is not None:
            lock.release()
        return None, None
    if unlocked is not None:
        log.warning("%s; the data folder is used without its lock: start no second intervisie on it", unlocked)
    return journal, lock


def make_listener(
    settings: Settings, phrases: Phrases, post: Any, speaker: Any, method_commands: dict[str, str] | None = None
) -> Any:
    """The microphone and recogniser, or None when listening is switched off or impossible.

    ``method_commands`` are the spoken commands that choose a method before the start
    (:meth:`~assistant.service.chooser.MethodChooser.voice_commands`), added to the locale's."""
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
    if settings.language == "en" and settings.model_name() == ListeningSettings().model:
        # The shipped model is Dutch: say so, rather than let English notes come out as Dutch words.
        log.warning(
            "this session is in English, but its notes are taken with the Dutch model %s ([listening] model); "
            "for English notes set [listening] model_en to an English model (for example %s) and install it "
            "with `%s`",
            settings.listening.model, ENGLISH_MODEL_EXAMPLE, command("model install --lang en " + ENGLISH_MODEL_EXAMPLE),
        )
    commands = {**phrases.table("commands"), **(method_commands or {})} if settings.listening.voice_commands else None
    # A rescan for a newly plugged-in microphone invalidates the speaker's stream too: the
    # speaker's player reopens it by itself (it registered with devices.on_rescan).
    return Listener(settings.listening, settings.model_path(), post, speaker, commands=commands)
