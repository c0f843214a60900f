"""A Vosk model with Kaldi's dither switched off, for decoding that repeats exactly.

Kaldi dithers the audio (adds noise; ``--dither`` defaults to 1) with a random
generator shared by the whole process, so the same samples decode a little differently
depending on what was decoded before them. Without dither the same samples always give
the same text, so a test (or the benchmark) can compare two decodings of them.
"""

from __future__ import annotations

from pathlib import Path


def without_dither(model: Path, folder: Path) -> Path:
    """``folder`` made a copy of ``model`` without dither, and returned.

    The copy links to the model's parts and has its own ``conf/``: the model's files,
    with ``--dither=0`` added to ``mfcc.conf``. ``folder`` may exist already (empty).
    """
    folder.mkdir(exist_ok=True)
    for part in model.iterdir():
        if part.name != "conf":
            (folder / part.name).symlink_to(part)
    (folder / "conf").mkdir()
    for conf in (model / "conf").iterdir():
        text = conf.read_text()
        if conf.name == "mfcc.conf":
            text = text.rstrip("\n") + "\n--dither=0\n"
        (folder / "conf" / conf.name).write_text(text)
    return folder
