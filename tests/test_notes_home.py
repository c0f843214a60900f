"""The notes go home (issue 11, "Done when"): a whole session with a spoken note ends with
the recap spoken into the sound card and the slip printed, read back as paper.

Real parts throughout: the daemon runs as a process; the leervraag is Korean speech that
espeak-ng makes, said into a FIFO microphone behind ALSA's file plugin and written down
by the real (Korean) Vosk model; the device speaks through pyttsx3 and espeak-ng into
the file sound card; the slip is rendered by python-escpos and written into a plain file
that stands in for the printer's device file, and ``tests/receipt.py`` reads its ESC/POS
bytes as the printer would print them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from anyascii import anyascii
from receipt import read_receipt
from support import (
    SPOKEN,
    Daemon,
    Microphone,
    leervraag_in_phase_two,
    no_dither_model,
    press_to_the_end,
    spoken_note,
    wait_until_quiet,
)

from assistant.audio.synthesis import Renderer
from assistant.config import load_method, load_phrases
from assistant.core.schedule import recap
from assistant.storage.records import record_paths
from assistant.testing import filesound

WIDTH = 32
WINDOW = 22050 // 4
"""A quarter of a second of speech (the sound card plays at the rendering's 22050 Hz)."""
AT = tuple(0.025 + 0.05 * n for n in range(20))
"""Where in a sentence's rendering the windows looked for in what was played start."""
SLACK = 22050 // 10
"""Windows of one sentence agree when their offsets are this close (100 ms): after other
speech, espeak-ng's pauses between words and sentences come out a little longer."""


class Played:
    """What the file sound card played, to look for a sentence in.

    espeak-ng's rendering of a text is the same every time from the same state, but not
    sample for sample after other speech (pauses and voicing differ by a few
    milliseconds). So a sentence is looked for as quarter-second windows, each where it
    correlates best with what was played: each window of a sentence that was said lands
    at the same offset; a sentence never said correlates well too here and there (speech
    is much like speech), but at scattered places.
    """

    def __init__(self, raw: bytes) -> None:
        self.samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        self.size = 1 << (len(self.samples) + WINDOW).bit_length()
        self.spectrum = np.fft.rfft(self.samples, self.size)
        self.energy = np.cumsum(np.concatenate([[0.0], self.samples**2]))

    def offset(self, window: np.ndarray) -> int:
        """Where ``window`` correlates best (normalized) with what was played."""
        corr = np.fft.irfft(self.spectrum * np.conj(np.fft.rfft(window, self.size)), self.size)
        corr = corr[: len(self.samples) - WINDOW]
        energy = self.energy[WINDOW : WINDOW + len(corr)] - self.energy[: len(corr)]
        quiet = 1e6 * WINDOW  # silence would divide by almost nothing
        return int(np.argmax(corr / np.sqrt(np.maximum(energy, quiet) * max(float(window @ window), quiet))))

    def agreeing(self, rendering: np.ndarray) -> int:
        """How many windows of ``rendering`` were found at one and the same place."""
        offsets = []
        for at in AT:
            start = int((len(rendering) - WINDOW) * at)
            offsets.append(self.offset(rendering[start : start + WINDOW].astype(np.float64)) - start)
        return max(sum(1 for o in offsets if abs(o - around) <= SLACK) for around in offsets)


@pytest.mark.slow  # the daemon as a process, a microphone at real time, the real (Korean) model
def test_a_whole_session_ends_with_the_recap_spoken_and_the_slip_printed(tmp_path: Path) -> None:
    sound = filesound.write_asoundrc(tmp_path / "home")
    mic = Microphone(sound.inp)
    model = no_dither_model(tmp_path / "model")
    clip, _ = spoken_note(mic, SPOKEN)
    data = tmp_path / "data"
    printer = tmp_path / "lp0"
    printer.touch()
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{data}"\nparticipants = 0\n[listening]\nmodel = "{model}"\n'
        "silence_seconds = 1.0\nwait_seconds = 7.0\nmax_seconds = 20\n"
        f'[printer]\nenabled = true\ndevice = "{printer}"\nwidth = {WIDTH}\nwhen = "ask"\n'
    )
    daemon = Daemon(tmp_path, "--speed", "6", env={"HOME": str(sound.home)})
    try:
        leervraag_in_phase_two(daemon, mic, sound.out, clip)
        daemon.key("")
        daemon.expect("say [note_saved]")
        press_to_the_end(daemon, "finished")
        daemon.expect("say [recap]")
        daemon.expect("say [summary]")
        daemon.expect("say [print_offer]")
        wait_until_quiet(sound.out, 0, at_least=0.0, quiet=1.5, timeout=120)
        assert printer.read_bytes() == b"", "with 'ask' nothing prints before the press"
        daemon.key("")
        daemon.expect("say [printing]")
        daemon.expect("say [printed]", timeout=60)
        daemon.expect("say [new_session]")
        daemon.key("q")
        assert daemon.finish(timeout=60) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        mic.close()

    [path] = record_paths(data)
    record = json.loads(path.read_text())
    leervraag = record["captures"]["leervraag"][-1]
    assert leervraag["accepted"] and leervraag["text"], "the spoken leervraag was written down"

    said = [line.split("say [", 1)[1].split("]", 1)[0] for line in daemon.log if "say [" in line]
    end = said[said.index("finished"):]
    assert end == ["finished", "recap", "summary", "print_offer", "printing", "printed", "new_session"], end
    recap_line = next(line for line in daemon.log if "say [recap]" in line)
    assert "characters of a note, not logged" in recap_line
    log = "".join(daemon.log)
    for word in leervraag["text"].split():
        assert word not in log, "what the group said stays out of the log"

    # The recap, as the device says it, was played into the sound card: windows from its
    # start to its end are found together, at one place in what was played.
    text = recap(load_phrases("nl"), record["captures"], load_method("intervisie", "nl").notes)
    assert leervraag["text"] in text
    renderer = Renderer("", 150, "nl")
    played = Played(sound.out.read_bytes())
    assert played.agreeing(renderer.render(text)) >= len(AT) // 2, "the recap was played"
    for never_said in ("print_skipped", "stopped_new"):
        rendering = renderer.render(load_phrases("nl").say(never_said))
        assert played.agreeing(rendering) <= len(AT) // 4, f"{never_said} was never said: the check can fail"

    # The slip, read as paper.
    receipt = read_receipt(printer.read_bytes())
    texts = receipt.texts()
    assert texts[0] == "Notities van de intervisie" and receipt.lines[0].bold and receipt.lines[0].tall
    assert receipt.code_pages == ["cp858"]
    assert max(line.columns() for line in receipt.lines) <= WIDTH
    assert receipt.cuts == [len(receipt.lines)] and receipt.after_last_cut == b"", "cut once, at the end"
    start = texts.index("Leervraag") + 1
    end = next(i for i in range(start, len(texts)) if set(texts[i]) == {"-"})
    # The Korean stand-in model writes Hangul, which no receipt code page has: the slip
    # writes it in Latin letters, word for word.
    assert " ".join(texts[start:end]) == anyascii(leervraag["text"])
    for heading in ("Kernvraag", "Actieplan", "Ideeën", "Wat iedereen meeneemt"):
        at = texts.index(heading)
        assert texts[at + 1] == "geen notitie", heading
    assert "Ideeën" in texts, "the Dutch letters print as themselves"
    words = " ".join(t for t in texts if t)
    assert "Tijd: " in words and words.endswith("Deze notities zijn van de groep en blijven binnen de groep.")
