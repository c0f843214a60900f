"""What the group hears: real espeak-ng speech and tones through real PortAudio.

The sound card is ALSA's file plugin (see conftest): everything played lands in
``out.raw`` as int16 mono frames at the stream's rate, so the tests measure what came
out of the "speaker". Playback is paced to real time, so the texts are kept short.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pytest
import sounddevice as sd

from assistant.audio.clips import split_head
from assistant.audio.speaker import AudioSpeaker, ConsoleSpeaker, make_speaker
from assistant.audio.synthesis import RENDER_RATE, Renderer
from assistant.core.settings import SpeechSettings
from assistant.errors import AudioDeviceError, SpeechError

if TYPE_CHECKING:
    from support import AlsaFiles

PATIENCE = 10.0
"""Longest wait for speech to finish; generous for a loaded 2-core machine."""
SENTENCE = "Welkom bij de intervisie, we beginnen zo meteen met de eerste ronde."
LONG_TEXT = " ".join(["Dit is een heel lange zin die maar doorgaat, en dan nog een stukje."] * 3)
NUMBERS = "21 37 48 99"
"""Spoken much longer in Dutch ("eenentwintig ...") than in English ("twenty-one ...")."""
PRESS_FRAMES = round(0.06 * RENDER_RATE)
HOLD_FRAMES = 2 * round(0.075 * RENDER_RATE)
TIME_UP_FRAMES = 3 * round(0.2 * RENDER_RATE)

Audio = npt.NDArray[np.int16]


@pytest.fixture
def speaker(alsa_files: AlsaFiles) -> Iterator[AudioSpeaker]:
    """A real speaker on the default (file) sound card, Dutch, default settings."""
    made = AudioSpeaker(SpeechSettings(), "nl")
    yield made
    made.close()


def played(path: Path) -> Audio:
    return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16)


def seconds(samples: Audio, rate: int = RENDER_RATE) -> float:
    return len(samples) / rate


def frame_levels(samples: Audio, rate: int = RENDER_RATE) -> npt.NDArray[np.float64]:
    """RMS of every 20 ms frame."""
    size = round(0.02 * rate)
    count = len(samples) // size
    frames = samples[: count * size].astype(np.float64).reshape(count, size)
    levels: npt.NDArray[np.float64] = np.sqrt((frames**2).mean(axis=1))
    return levels


def dominant_hz(samples: Audio, rate: int = RENDER_RATE) -> float:
    window = samples.astype(np.float64) * np.hanning(len(samples))
    padded = np.abs(np.fft.rfft(window, n=16 * len(samples)))  # zero padding: finer bins
    return float(np.fft.rfftfreq(16 * len(samples), 1 / rate)[np.argmax(padded)])


def eventually(check: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return check()


@pytest.mark.slow
def test_a_dutch_sentence_comes_out_of_the_speaker(speaker: AudioSpeaker, alsa_files: AlsaFiles) -> None:
    speaker.say(SENTENCE)
    assert speaker.wait_idle(PATIENCE)
    speaker.close()
    out = played(alsa_files.out)

    # Eleven words at 150 words per minute: a few seconds, not a blip and not a loop.
    assert 1.5 < seconds(out) < 6
    # Speech, not silence and not a steady tone: mostly voiced, with pauses and ups and downs.
    levels = frame_levels(out)
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) > 1000
    assert 0.4 < np.mean(levels > 300) < 0.98
    assert np.mean(levels < 100) > 0.03
    assert levels.std() / levels.mean() > 0.4
    # Exactly what the speaker rendered for this text was played.
    assert np.array_equal(out, speaker.clip(SENTENCE))
    # With the Dutch voice: Dutch says numbers as long compound words.
    dutch = speaker.renderer.render(NUMBERS)
    english = Renderer("", 150, "en").render(NUMBERS)
    assert speaker.renderer.voice == "gmw/nl"
    assert len(dutch) > 1.1 * len(english)


@pytest.mark.slow
def test_say_returns_at_once_and_wait_idle_returns_when_it_has_been_said(speaker: AudioSpeaker) -> None:
    text = "Nog één minuut."
    asked = time.monotonic()
    speaker.say(text)
    assert time.monotonic() - asked < 0.05
    assert speaker.is_speaking()
    assert not speaker.wait_idle(0.05)

    assert speaker.wait_idle(PATIENCE)
    waited = time.monotonic() - asked
    length = seconds(speaker.clip(text))
    assert not speaker.is_speaking()
    # Played in real time: wait_idle returns when the sound has ended, not when it was queued.
    assert length - 0.1 < waited < length + 1.0
    assert speaker.last_audio_started is not None and speaker.last_audio_ended is not None
    assert speaker.last_audio_ended - speaker.last_audio_started == pytest.approx(length, abs=0.1)


@pytest.mark.slow
def test_a_press_cuts_speech_off_at_once_and_its_tone_is_heard(speaker: AudioSpeaker, alsa_files: AlsaFiles) -> None:
    full = seconds(speaker.clip(LONG_TEXT))
    assert full > 10
    speaker.say(LONG_TEXT)
    assert eventually(lambda: speaker.last_audio_started is not None)
    first_block = speaker.last_audio_started
    assert first_block is not None
    time.sleep(0.4)

    pressed = time.monotonic()
    speaker.stop()  # what the daemon does on a press: cut, then the press tone
    speaker.tone("press")
    assert time.monotonic() - pressed < 0.2
    assert speaker.last_audio_ended is not None and speaker.last_audio_ended - pressed < 0.1
    assert speaker.wait_idle(2)
    speaker.close()

    out = played(alsa_files.out)
    assert seconds(out) < 1.5, "far less than the whole text"
    speech, tone = out[:-PRESS_FRAMES], out[-PRESS_FRAMES:]
    # No more than a block or two beyond what the wall clock had reached at the press.
    assert seconds(speech) < pressed - first_block + 0.1
    assert dominant_hz(tone) == pytest.approx(880, abs=15)


@pytest.mark.slow
def test_the_press_tone_is_short_and_high_and_the_others_are_distinct(
    speaker: AudioSpeaker, alsa_files: AlsaFiles
) -> None:
    for kind in ("press", "hold", "time_up"):
        speaker.tone(kind)
        assert speaker.wait_idle(2)
    speaker.close()
    out = played(alsa_files.out)

    assert len(out) == PRESS_FRAMES + HOLD_FRAMES + TIME_UP_FRAMES
    press, hold, time_up = np.split(out, [PRESS_FRAMES, PRESS_FRAMES + HOLD_FRAMES])
    assert 0.04 < seconds(press) < 0.1
    assert dominant_hz(press) == pytest.approx(880, abs=15)
    assert np.abs(press.astype(np.int32)).max() > 5000, "loud enough to hear"
    assert abs(int(press[0])) < 500 and abs(int(press[-1])) < 500, "faded in and out: no click"
    first, second = np.split(hold, 2)
    assert dominant_hz(first) < dominant_hz(second), "the hold tone rises"
    assert 0.5 < seconds(time_up) < 0.8
    notes = [dominant_hz(note) for note in np.split(time_up, 3)]
    assert notes == sorted(notes) and len({round(n) for n in notes}) == 3, "a three-note chime"


@pytest.mark.slow
def test_a_prepared_phrase_is_not_rendered_again(speaker: AudioSpeaker) -> None:
    phrases = ["Fase twee.", "Nog één minuut."]
    speaker.prepare(phrases)
    rendered = speaker.renderer.renders

    asked = time.monotonic()
    speaker.say("Fase twee.")
    assert eventually(lambda: speaker.last_audio_started is not None, 2)
    assert speaker.last_audio_started is not None
    assert speaker.last_audio_started - asked < 0.05
    assert speaker.wait_idle(PATIENCE)
    assert speaker.renderer.renders == rendered

    speaker.say("Dit is nieuw.")
    assert speaker.wait_idle(PATIENCE)
    assert speaker.renderer.renders == rendered + 1


@pytest.mark.slow
def test_several_sentences_queue_in_order_and_all_are_said(speaker: AudioSpeaker, alsa_files: AlsaFiles) -> None:
    texts = ["Fase één.", "Inventarisatie.", "Vijf minuten."]
    for text in texts:
        speaker.say(text)
    assert speaker.wait_idle(PATIENCE)
    speaker.close()

    out = played(alsa_files.out)
    expected = np.concatenate([speaker.clip(text) for text in texts])
    assert np.array_equal(out, expected)  # each one whole, in order (not only the last)


@pytest.mark.slow
def test_a_tone_goes_before_queued_speech(speaker: AudioSpeaker, alsa_files: AlsaFiles) -> None:
    speaker.say("Eerste.")
    speaker.say("Tweede.")
    assert eventually(lambda: speaker.last_audio_started is not None)
    speaker.tone("press")  # does not cut "Eerste", but goes before "Tweede"
    assert speaker.wait_idle(PATIENCE)
    speaker.close()

    out = played(alsa_files.out)
    first, second = speaker.clip("Eerste."), speaker.clip("Tweede.")
    assert len(out) == len(first) + PRESS_FRAMES + len(second)
    assert np.array_equal(out[: len(first)], first)
    assert dominant_hz(out[len(first) : len(first) + PRESS_FRAMES]) == pytest.approx(880, abs=15)
    assert np.array_equal(out[-len(second) :], second)


@pytest.mark.slow
def test_the_listen_tone_comes_after_the_invitation_it_ends(speaker: AudioSpeaker, alsa_files: AlsaFiles) -> None:
    # "Say it after the tone": the device asks, then beeps, then listens.
    speaker.tone("press")
    speaker.say("Zeg het na de toon.")
    speaker.tone("listen")
    assert speaker.wait_idle(PATIENCE)
    speaker.close()

    out = played(alsa_files.out)
    invitation = speaker.clip("Zeg het na de toon.")
    listen_frames = round(0.18 * RENDER_RATE)
    assert len(out) == PRESS_FRAMES + len(invitation) + listen_frames
    assert np.array_equal(out[PRESS_FRAMES : PRESS_FRAMES + len(invitation)], invitation)
    assert dominant_hz(out[-listen_frames:]) == pytest.approx(1046.5, abs=15)


@pytest.mark.slow
def test_speech_and_tones_on_a_card_that_wants_48000_hz(alsa_files: AlsaFiles) -> None:
    speaker = AudioSpeaker(SpeechSettings(), "nl", samplerate=48000)
    try:
        speaker.say("Ja.")
        speaker.tone("press")  # goes first: "Ja." was still being rendered or just queued
        assert speaker.wait_idle(PATIENCE)
    finally:
        speaker.close()
    out = played(alsa_files.out)
    press_frames = round(0.06 * 48000)
    spoken = Renderer("", 150, "nl").render("Ja.")

    assert seconds(out, 48000) == pytest.approx(seconds(spoken) + 0.06, abs=0.05)
    assert dominant_hz(out[:press_frames], 48000) == pytest.approx(880, abs=15)


@pytest.mark.slow
def test_the_volume_setting_makes_it_quieter(alsa_files: AlsaFiles) -> None:
    loud = AudioSpeaker(SpeechSettings(volume=1.0), "nl")
    quiet = AudioSpeaker(SpeechSettings(volume=0.5), "nl")
    try:
        full, half = loud.clip("Stilte."), quiet.clip("Stilte.")
        quiet.say("Stilte.")
        assert quiet.wait_idle(PATIENCE)
    finally:
        loud.close()
        quiet.close()
    out = played(alsa_files.out)
    assert np.array_equal(out, half)
    peak = np.abs(full.astype(np.int32)).max()
    assert np.abs(out.astype(np.int32)).max() == pytest.approx(peak / 2, rel=0.1)


@pytest.mark.slow
def test_a_device_error_drops_one_sentence_and_the_next_is_said(
    speaker: AudioSpeaker, alsa_files: AlsaFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stream = speaker.player._stream
    real_write = stream.write
    failures: list[bytes] = []

    def unplugged_once(data: bytes) -> bool:
        if not failures:
            failures.append(data)
            raise sd.PortAudioError("Unanticipated host error")
        return bool(real_write(data))

    monkeypatch.setattr(stream, "write", unplugged_once)
    with caplog.at_level(logging.WARNING, logger="assistant.audio"):
        speaker.say("Kwijt.")
        assert speaker.wait_idle(PATIENCE)
        speaker.say("Wel gezegd.")
        assert speaker.wait_idle(PATIENCE)
    speaker.close()

    assert [r.getMessage() for r in caplog.records if "audio output failed" in r.getMessage()]
    assert np.array_equal(played(alsa_files.out), speaker.clip("Wel gezegd."))


@pytest.mark.slow
@pytest.mark.parametrize("told", [True, False], ids=["told to reopen", "finds out by itself"])
def test_after_portaudio_rescans_its_devices_the_speaker_speaks_again(
    speaker: AudioSpeaker, alsa_files: AlsaFiles, told: bool
) -> None:
    speaker.say("Een.")
    assert speaker.wait_idle(PATIENCE)
    # What the listener does when a microphone is plugged in: every open stream dies.
    sd._terminate()
    sd._initialize()
    if told:
        speaker.player.reopen()
    else:
        speaker.say("Kwijt.")  # the old stream fails: this one is dropped
        assert speaker.wait_idle(PATIENCE)
    speaker.say("Twee.")
    assert speaker.wait_idle(PATIENCE)
    speaker.close()
    # The new stream opened the file card afresh (it truncates): only "Twee." is in it.
    assert np.array_equal(played(alsa_files.out), speaker.clip("Twee."))


def test_without_the_configured_card_announcements_go_to_the_console(
    alsa_files: AlsaFiles, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = SpeechSettings(output_device="no such card")
    with caplog.at_level(logging.WARNING, logger="assistant.audio"):
        speaker = make_speaker(settings, "nl")
    assert isinstance(speaker, ConsoleSpeaker)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "no usable audio output" in warnings[0] and "no such card" in warnings[0]

    speaker.say("Fase 1: inventarisatie.")
    assert "Fase 1: inventarisatie.\n" in capsys.readouterr().err
    assert alsa_files.out.stat().st_size == 0


def test_a_missing_card_is_named_with_the_ones_that_exist(alsa_files: AlsaFiles) -> None:
    with pytest.raises(AudioDeviceError, match="'no such card' not found; available outputs: .*default"):
        AudioSpeaker(SpeechSettings(output_device="no such card"), "nl")
    with pytest.raises(AudioDeviceError, match="device 99 does not exist"):
        AudioSpeaker(SpeechSettings(output_device=99), "nl")
    found = AudioSpeaker(SpeechSettings(output_device="defa"), "nl")  # part of the name is enough
    try:
        assert found.player.device_name == "default"
    finally:
        found.close()


def test_a_voice_that_is_not_installed_is_reported_and_falls_back(
    alsa_files: AlsaFiles, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SpeechError, match="no voice 'no-such-voice'"):
        AudioSpeaker(SpeechSettings(voice="no-such-voice"), "nl")
    with caplog.at_level(logging.WARNING, logger="assistant.audio"):
        assert isinstance(make_speaker(SpeechSettings(voice="no-such-voice"), "nl"), ConsoleSpeaker)
    # The shared engine is not left broken: the next speaker speaks Dutch.
    assert len(Renderer("", 150, "nl").render(NUMBERS)) > 2 * RENDER_RATE


def test_the_console_speaker_writes_each_text_as_a_line() -> None:
    console = io.StringIO()
    speaker = ConsoleSpeaker(console)
    speaker.prepare(["Hallo."])
    speaker.say("Hallo allemaal.")
    speaker.say("   ")
    speaker.tone("press")
    speaker.say("Fase 2: verheldering.")
    assert console.getvalue() == "Hallo allemaal.\nFase 2: verheldering.\n"
    assert not speaker.is_speaking()
    assert speaker.wait_idle(0)
    assert speaker.last_audio_started is not None and speaker.last_audio_ended is not None
    speaker.stop()
    speaker.close()
    with pytest.raises(ValueError, match="unknown tone 'beep'"):
        speaker.tone("beep")


@pytest.mark.slow
def test_a_long_prepared_phrase_starts_at_once_and_is_said_whole(speaker: AudioSpeaker, alsa_files: AlsaFiles) -> None:
    # Only its first sentences are kept rendered (memory); the rest renders while they play.
    text = (
        "Fase 1: inventarisatie. 5 minuten. Iedereen vertelt om de beurt kort over een situatie "
        "die hij of zij wil inbrengen. Luister eerst naar alle voorbeelden."
    )
    head, rest = split_head(text)
    assert head == "Fase 1: inventarisatie. 5 minuten." and rest.startswith("Iedereen vertelt")
    speaker.prepare([text])
    asked = time.monotonic()
    speaker.say(text)
    assert eventually(lambda: speaker.last_audio_started is not None, 2)
    assert speaker.last_audio_started is not None and speaker.last_audio_started - asked < 0.05
    assert speaker.wait_idle(3 * PATIENCE)  # about twelve seconds of speech
    speaker.close()
    out = played(alsa_files.out)
    first, second = speaker.clip(head), speaker.clip(rest)
    assert np.array_equal(out[: len(first)], first)
    # The rest follows at once and whole. (espeak-ng's rendering of it differs slightly
    # from one rendering to the next, so its length and loudness are compared, not every
    # sample; when the stream drains at the end the file card may pad one period.)
    following = out[len(first) :]
    assert abs(len(following) - len(second)) <= 0.02 * RENDER_RATE
    assert frame_levels(following[:4410]).max() > 500, "speech right after the head, no pause"
    assert np.mean(frame_levels(following) > 100) == pytest.approx(np.mean(frame_levels(second) > 100), abs=0.05)
