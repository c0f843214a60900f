"""A note through the real daemon process, heard by a real Vosk model.

``intervisie run`` runs as in test_run.py (keyboard as the button on stdin, a fast
clock), with its own ``HOME`` whose ``.asoundrc`` makes ALSA's file plugin its sound
card: what it says goes to ``out.raw``, and its microphone is ``in.raw``, a FIFO that
the test writes at real time, one stream block (0.1 s of int16 mono at 16 kHz) per
write (see test_listening.py for why a FIFO, and why written block by block). The
model is the Korean one from PyPI without dithering, and the speech is espeak-ng's
Korean, so the text the daemon keeps can be compared with what bare Vosk makes of the
very same samples.

To know exactly which samples the note's recogniser got, the test stops writing before
the press that invites the note (the daemon's microphone then waits in its read, so no
audio at all is captured while the device says the invitation and plays the tone), and
writes again only when the device has been quiet for longer than the mute margin. The
first block the note gets is then the first block of the test's clip. (This matters:
the text this model makes of espeak-ng's Korean changes with 0.1 s more or less of quiet
before the speech, observed.) The kernvraag and the actieplan are invited with the
microphone running all the time, as in a real room.
"""

from __future__ import annotations

import json
import os
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support import (
    HANGUL,
    SPOKEN,
    Daemon,
    Microphone,
    bare_vosk_with_words,
    join,
    no_dither_model,
    say_when_invited,
    silence,
    speech,
    spoken_note,
)

from assistant.testing import filesound

pytestmark = pytest.mark.slow  # the daemon as a process, a microphone at real time, the real model

SPEED = 6
"""Session clock speed: phase 2 would invite the note by itself only after 30 s."""
SILENCE_SECONDS = 1.0
WAIT_SECONDS = 7.0
"""How long the note waits for a first word (only open-microphone audio counts)."""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_leervraag_said_into_the_microphone_is_kept_in_the_record_and_report(tmp_path: Path) -> None:
    sound = filesound.write_asoundrc(tmp_path / "home")
    mic = Microphone(sound.inp)
    model = no_dither_model(tmp_path / "model")
    clip, heard_by_bare_vosk = spoken_note(mic, SPOKEN)
    over_the_device = join(silence(0.2), speech(SPOKEN), silence(0.2))
    pool = ThreadPoolExecutor(1)
    expected: Future[tuple[str, list[dict[str, Any]]]] = pool.submit(bare_vosk_with_words, model, heard_by_bare_vosk)
    pool.shutdown(wait=False)
    data = tmp_path / "data"
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{data}"\nparticipants = 0\n'
        f'[listening]\nmodel = "{model}"\n'
        f"silence_seconds = {SILENCE_SECONDS}\nwait_seconds = {WAIT_SECONDS}\nmax_seconds = 20\n"
    )
    daemon = Daemon(tmp_path, "--speed", str(SPEED), env={"HOME": str(sound.home)})
    try:
        daemon.expect("speech recognition: ready", timeout=60)
        daemon.key("")
        daemon.expect("say [phase]: Fase 1:")
        daemon.key("")
        daemon.expect("say [phase]: Fase 2:")
        daemon.expect("say [note_hint]")

        # The leervraag: invited on a press, said when the device is quiet.
        spoken_at = say_when_invited(daemon, mic, sound.out, clip)
        line = daemon.expect("say [note_heard]")
        heard_after = time.monotonic() - spoken_at
        daemon.expect("say [note_first_person]")  # Korean has no "ik", "mij", "mijn"...
        daemon.key("")
        daemon.expect("say [note_saved]")

        daemon.key("")
        daemon.expect("say [phase]: Fase 3:")
        cpu_before, idle_from = cpu_seconds(daemon.proc.pid), time.monotonic()
        time.sleep(2.0)  # listening to a quiet room outside notes costs (almost) nothing
        idle_cpu = (cpu_seconds(daemon.proc.pid) - cpu_before) / (time.monotonic() - idle_from)

        # The kernvraag and the actieplan: invited with the microphone on all the time.
        # The kernvraag is said over the device's invitation (so it is not heard), the
        # actieplan not at all: both end after wait_seconds with nothing.
        for number in (4, 6):
            daemon.key("")
            daemon.expect(f"say [phase]: Fase {number}:")
            daemon.expect("say [note_hint]")
            daemon.key("")
            daemon.expect("say [note_invite]")
            if number == 4:
                mic.say(over_the_device)  # the invitation lasts about 5 s
            daemon.expect("say [note_nothing]")
            daemon.key("")  # once: go on without a note
            daemon.expect(f"say [phase]: Fase {number + 1}:")
            daemon.expect("say [note_running]")  # the ideas, the closing sentences: nothing said
        daemon.key("")
        daemon.expect("say [summary]")
        daemon.expect("saved to")
        daemon.expect("report of session")
        daemon.key("q")
        assert daemon.finish(timeout=30) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        mic.close()

    text, words = expected.result(60)
    assert text, "bare Vosk hears words in the speech"
    said = len(f"Ik heb genoteerd: {text}.")  # the locale's note_heard
    assert f"({said} characters of a note, not logged)" in line
    print(f"note heard {heard_after:.1f} s after the speech began; daemon CPU outside notes {idle_cpu:.0%}")
    assert idle_cpu < 0.5

    records = sorted((data / "records").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["finished"]
    leervraag = record["captures"]["leervraag"]
    assert [item["accepted"] for item in leervraag] == [True]
    item = leervraag[0]
    assert item["text"] == text, "the daemon heard exactly what bare Vosk hears in the same samples"
    assert item["words"] == words
    assert (item["phase"], item["attempt"], item["first_person"]) == (2, 1, False)
    assert not any(record["captures"].get(kind) for kind in ("kernvraag", "actieplan", "ideas", "takeaways"))

    markdown = (data / "reports" / f"{record['id']}.md").read_text()
    assert f"> {text}" in markdown.replace("(?)", "").replace("\\", "")
    report = json.loads((data / "reports" / f"{record['id']}.json").read_text())
    assert text in json.dumps(report, ensure_ascii=False)

    log = "".join(daemon.log)
    assert daemon.proc.stdout is not None
    log += daemon.proc.stdout.read()
    assert text not in log and not HANGUL.search(log), "what the group said never reaches the log"

    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    session = record["id"]
    assert modes == {
        ".": 0o700,
        "records": 0o700,
        f"records/{session}.json": 0o600,
        "reports": 0o700,
        f"reports/{session}.md": 0o600,
        f"reports/{session}.json": 0o600,
        f"reports/{session}.html": 0o600,
    }, "the finished session left its record and report, private, and no journal"
