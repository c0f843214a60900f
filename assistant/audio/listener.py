"""Listening: the microphone, offline speech recognition, notes and voice commands.

:class:`Listener` opens the microphone (:mod:`assistant.audio.microphone`) and hands its audio to a
:class:`~assistant.audio.recognition.Transcriber` in one recogniser thread. The session asks
for notes through the daemon (:meth:`Listener.capture`, :meth:`Listener.stop`) and gets
:class:`~assistant.core.events.Heard`, :class:`~assistant.core.events.VoiceCommand` and
:class:`~assistant.core.events.ListenerState` events back through ``post``.

The device never hears itself: audio captured while the speaker plays, or within
``mute_margin_seconds`` after it stopped, is dropped. A missing or broken model, or a
missing microphone, is a state (with a reason for the log), never a crash; a microphone
that disappears is looked for again every few seconds.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import memory
from assistant.audio import devices
from assistant.audio.microphone import Microphone, close_stream, open_microphone
from assistant.audio.model import load_model
from assistant.audio.recognition import BLOCK_SECONDS, Transcriber
from assistant.command import command
from assistant.core.events import Event, Heard, ListenerState
from assistant.core.settings import ListeningSettings
from assistant.errors import ModelError

if TYPE_CHECKING:
    from assistant.audio.speaker import Speaker

log = logging.getLogger(__name__)

RETRY_SECONDS = 3.0
"""How often a missing microphone is looked for again."""
MODEL_RECHECK_SECONDS = 10.0
"""How often the files of a missing or broken model are looked at: when they change (the
model was installed again), it is loaded again without a restart."""
QUEUE_SECONDS = 10.0
"""Most audio waiting for the recogniser; beyond it the oldest is dropped."""
_TICK = 0.05
"""Longest wait of the recogniser thread for audio before it looks at requests."""


def model_files(path: Path) -> tuple[object, ...]:
    """What changes when a model folder's files are replaced (name, inode, size, time of each)."""
    entries: list[tuple[str, int, int, int]] = []
    for root, _dirs, files in os.walk(path, followlinks=True):
        for name in files:
            try:
                stat = (Path(root) / name).stat()
            except OSError:
                continue
            entries.append((os.path.join(root, name), stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


class Listener:
    """The microphone and the recogniser thread; see the module docstring.

    Every method returns at once and may be called from any thread; events are posted
    from the listener's own thread.
    """

    retry_seconds: float = RETRY_SECONDS
    """How often a missing microphone is looked for (set before :meth:`start`)."""
    model_recheck_seconds: float = MODEL_RECHECK_SECONDS
    """How often the files of a model that did not load are looked at for a change."""

    def __init__(
        self,
        settings: ListeningSettings,
        model_path: Path,
        post: Callable[[Event], None],
        speaker: Speaker | None,
        commands: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing is opened or loaded until :meth:`start`.

        ``commands`` maps a voice command (one of :data:`assistant.core.events.VOICE_COMMANDS`)
        to its phrases separated by "|", from the locale. ``clock`` must tell the time
        the way the speaker's ``last_audio_ended`` does (``time.monotonic``). Of the
        :class:`~assistant.audio.speaker.Speaker` only :meth:`~assistant.audio.speaker.Speaker.is_speaking`
        and :attr:`~assistant.audio.speaker.Speaker.last_audio_ended` are used (for muting
        and for postponing a rescan), so a stand-in needs only those two.
        """
        self._settings = settings
        self._model_path = Path(model_path)
        self._post = post
        self._speaker = speaker
        self._commands = dict(commands or {})
        self._clock = clock
        self.open_microphone: Callable[..., Microphone] = open_microphone
        """Opens the microphone (see :func:`open_microphone`); tests may replace it."""
        self.on_rescan: Callable[[], None] | None = None
        """Called after this listener rescanned the device list. A rescan closes every
        stream of the process; the speaker's player reopens its own (it registered with
        :func:`assistant.audio.devices.on_rescan`), so the daemon needs nothing here."""
        self._lock = threading.Lock()
        self._state = "loading" if settings.enabled else "off"
        self._requests: collections.deque[tuple[float, str, Any]] = collections.deque()
        maxsize = max(1, round(QUEUE_SECONDS / BLOCK_SECONDS))
        self._audio: queue.Queue[tuple[bytes, float, bool]] = queue.Queue(maxsize)
        self._dropped = 0  # blocks dropped because the recogniser fell behind (callback thread)
        self._overflows = 0  # blocks the device reported as overflowed (callback thread)
        self._lost = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._microphone: Microphone | None = None
        self._next_try = 0.0
        self._model_seen: tuple[object, ...] = ()

    # ------------------------------------------------------------------ public

    @property
    def state(self) -> str:
        """One of :data:`assistant.core.events.LISTENER_STATES`."""
        with self._lock:
            return self._state

    def start(self) -> None:
        """Load the model and open the microphone in the background; returns at once."""
        if self._thread is not None or self._closing.is_set():
            return
        if not self._settings.enabled:
            self._set_state("off", "speech recognition is switched off in the settings", force=True)
            return
        self._set_state("loading", f"loading the speech model at {self._model_path}", force=True)
        self._thread = threading.Thread(target=self._run, name="listener", daemon=True)
        self._thread.start()

    def capture(self, kind: str, continuous: bool) -> None:
        """Start a note: a single one (one :class:`Heard`) or a running one (one per utterance).

        When the listener cannot listen now, a single note ends at once with an empty
        :class:`Heard`, so the session never waits for one in vain; a running note starts
        when the microphone is back.
        """
        with self._lock:
            state = self._state
            alive = self._thread is not None and not self._closing.is_set()
            if alive and (state == "ready" or (continuous and state in ("loading", "no_microphone"))):
                self._requests.append((self._clock(), "capture", (kind, continuous)))
                return
        if not continuous:
            log.info("note (%s) not taken: the listener is %s", kind, state)
            self._post(Heard(kind=kind))

    def stop(self, finish: bool = True) -> None:
        """End the note: ``finish`` delivers what was said so far as a :class:`Heard`, else drops it."""
        with self._lock:
            if self._thread is not None and not self._closing.is_set():
                self._requests.append((self._clock(), "stop", finish))

    def close(self) -> None:
        """Stop listening and release the microphone; later calls do nothing."""
        self._closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
            if thread.is_alive():
                log.warning("the listener thread did not end; the microphone may be stuck")

    # ------------------------------------------------------------------ callbacks (PortAudio's thread)

    def _on_audio(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # The capture time decides muting, not the time the recogniser gets to the block:
        # it may lag behind. Two cheap reads of the speaker's state; nothing else here.
        now = self._clock()
        muted = False
        speaker = self._speaker
        if speaker is not None:
            ended = speaker.last_audio_ended
            muted = speaker.is_speaking() or (
                ended is not None and now - ended < self._settings.mute_margin_seconds
            )
        if status:
            self._overflows += 1
        item = (bytes(indata), now, muted)
        try:
            self._audio.put_nowait(item)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                self._audio.get_nowait()
            self._dropped += 1
            try:
                self._audio.put_nowait(item)
            except queue.Full:
                self._dropped += 1

    def _on_finished(self) -> None:
        self._lost.set()

    # ------------------------------------------------------------------ the recogniser thread

    def _run(self) -> None:
        try:
            transcriber = self._load()
            while transcriber is None:
                # No usable model: load it again when its files change (a reinstall).
                if not self._wait_for_model_change():
                    return
                self._set_state("loading", f"the speech model at {self._model_path} changed: loading it again")
                transcriber = self._load()
            self._loop(transcriber)
        except Exception:
            log.exception("the listener stopped after an unexpected error")
            self._set_state("no_microphone", "the listener stopped after an unexpected error (see the log)")
        finally:
            self._release()

    def _load(self) -> Transcriber | None:
        """The model and a transcriber on it; None (state no_model, with the reason) if that fails."""
        try:
            model = load_model(self._model_path)
        except ModelError as exc:
            self._no_model(str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 (e.g. Vosk itself missing: still just "no model")
            self._no_model(f"cannot load the speech model at {self._model_path} ({exc})")
            return None
        log.info("speech model loaded from %s", self._model_path)
        try:
            transcriber = Transcriber(model, self._settings, self._post, self._commands, rate=self._settings.samplerate)
        except Exception as exc:  # noqa: BLE001 (Vosk raises a bare Exception when a recogniser cannot be made)
            self._no_model(
                f"cannot make a recogniser from the speech model at {self._model_path} ({exc}); "
                f"reinstall it with `{command('model install --force')}`"
            )
            return None
        memory.give_back_free_memory("loading the speech model")
        return transcriber

    def _no_model(self, why: str) -> None:
        self._model_seen = model_files(self._model_path)
        with self._lock:
            self._requests.clear()  # asked for while loading: nobody waits for them now
        self._set_state("no_model", why)

    def _wait_for_model_change(self) -> bool:
        """Wait until the model's files change; False when the listener closes first."""
        while not self._closing.wait(self.model_recheck_seconds):
            if model_files(self._model_path) != self._model_seen:
                return True
        return False

    def _loop(self, transcriber: Transcriber) -> None:
        warned_drops = overflows = 0
        while not self._closing.is_set():
            if self._microphone is None and time.monotonic() >= self._next_try:
                self._open(transcriber)
            try:
                block, captured, muted = self._audio.get(timeout=_TICK)
            except queue.Empty:
                self._apply_requests(transcriber, None)
            else:
                # Requests take effect from the first block captured after them.
                self._apply_requests(transcriber, captured)
                if self._microphone is not None:
                    transcriber.feed(block, muted)
            self._check_microphone(transcriber)
            if self._dropped > warned_drops:
                if not warned_drops:
                    log.warning("speech recognition falls behind the microphone: the oldest audio is dropped")
                else:
                    log.debug("%d audio blocks dropped so far", self._dropped)
                warned_drops = self._dropped
            if self._overflows > overflows:
                overflows = self._overflows
                log.debug("the microphone reported %d overflows so far", overflows)

    def _apply_requests(self, transcriber: Transcriber, until: float | None) -> None:
        while True:
            with self._lock:
                if not self._requests or (until is not None and self._requests[0][0] > until):
                    return
                _when, action, argument = self._requests.popleft()
            if action == "capture":
                kind, continuous = argument
                if self._microphone is None and not continuous:
                    log.info("note (%s) not taken: no microphone", kind)
                    self._post(Heard(kind=kind))
                else:
                    transcriber.capture(kind, continuous)
            else:
                transcriber.stop(finish=argument)

    def _open(self, transcriber: Transcriber) -> None:
        try:
            self._rescan_if_changed()
            self._lost.clear()
            microphone = self.open_microphone(
                self._settings.input_device, self._settings.samplerate, self._on_audio, self._on_finished
            )
        except Exception as exc:  # noqa: BLE001 (AudioDeviceError, or PortAudio failing to rescan)
            self._next_try = time.monotonic() + self.retry_seconds
            self._set_state("no_microphone", f"{exc}; looking again every {self.retry_seconds:g} s")
            return
        if microphone.rate != transcriber.rate:
            transcriber.set_rate(microphone.rate)  # nothing is in progress: no stream before
        self._microphone = microphone
        self._set_state("ready", f"listening on {microphone.name} at {microphone.rate} Hz")

    def _check_microphone(self, transcriber: Transcriber) -> None:
        microphone = self._microphone
        if microphone is None:
            return
        why = ""
        if self._lost.is_set():
            why = "the stream ended"
        else:
            try:
                with devices.lock:
                    active = microphone.stream.active
                if not active:
                    why = "the stream stopped"
            except Exception as exc:  # noqa: BLE001 (PortAudioError after a rescan elsewhere)
                why = str(exc)
        if not why:
            return
        close_stream(microphone.stream)
        while True:  # audio captured before the loss still counts
            try:
                block, captured, muted = self._audio.get_nowait()
            except queue.Empty:
                break
            self._apply_requests(transcriber, captured)
            transcriber.feed(block, muted)
        self._microphone = None
        self._next_try = time.monotonic() + self.retry_seconds
        # The state first: the session then knows, when the note that was cut short
        # arrives, that the microphone is gone (and says so once).
        self._set_state(
            "no_microphone",
            f"the microphone {microphone.name!r} stopped ({why}); looking again every {self.retry_seconds:g} s",
        )
        transcriber.interrupt()

    def _rescan_if_changed(self) -> None:
        """Let PortAudio list the devices again, if the sound hardware or ALSA's files changed.

        A rescan stops every stream of the process, the speaker's too: so it waits while
        the speaker plays (see :func:`assistant.audio.devices.rescan_if_changed`, which
        also tells the player to reopen its stream), and then calls :attr:`on_rescan`.
        """
        speaker = self._speaker
        if devices.rescan_if_changed(lambda: speaker is None or not speaker.is_speaking()) and self.on_rescan is not None:
            self.on_rescan()

    def _release(self) -> None:
        microphone, self._microphone = self._microphone, None
        if microphone is not None:
            close_stream(microphone.stream)

    # ------------------------------------------------------------------ state

    def _set_state(self, state: str, detail: str, force: bool = False) -> None:
        with self._lock:
            changed = state != self._state
            self._state = state
        if changed or force:
            # The states in which no notes can be taken are warnings; each is logged once
            # (retries that find the same state say nothing).
            level = logging.WARNING if state in ("no_model", "no_microphone") else logging.INFO
            log.log(level, "listener %s: %s", state, detail)
            self._post(ListenerState(state=state, detail=detail))
