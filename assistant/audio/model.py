"""The Vosk speech model in memory: loading a model folder (never downloading anything),
making recognisers, and the grammar of the voice commands.

One model is loaded once per process and shared; each thread makes its own recogniser.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from assistant.command import command
from assistant.core.events import VOICE_COMMANDS, is_voice_command
from assistant.errors import ModelError

log = logging.getLogger(__name__)

MODEL_RATE = 16000
"""The rate Vosk models are trained on; other rates are resampled by Vosk itself."""


REQUIRED_FILES = ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf")
"""Files every model needs (Vosk looks for ``am/final.mdl`` and ``conf/model.conf``)."""


UNKNOWN_WORD = "[unk]"
"""The grammar entry that stands for any word outside the grammar, if the model has it."""

_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


class Recognizer(Protocol):
    """The part of ``vosk.KaldiRecognizer`` the transcriber uses."""

    def AcceptWaveform(self, data: bytes) -> int: ...  # noqa: N802 (Vosk's names)
    def Result(self) -> str: ...  # noqa: N802
    def PartialResult(self) -> str: ...  # noqa: N802
    def FinalResult(self) -> str: ...  # noqa: N802
    def Reset(self) -> None: ...  # noqa: N802
    def SetWords(self, enable: bool) -> None: ...  # noqa: N802


RecognizerFactory = Callable[[Any, float, str | None], Recognizer]
"""Makes a recogniser: (model, sample rate, grammar as a JSON list or None for free-form)."""


def import_vosk() -> Any:
    """The ``vosk`` module, imported without opening a socket; ImportError if it is missing.

    vosk imports ``requests`` for a model downloader of its own (never used here), and
    urllib3 then checks at import whether IPv6 works by binding a socket to ::1. The
    device opens no network sockets at all, so that check is skipped: urllib3 takes
    ``socket.has_ipv6`` as its answer, which is made False for the length of the import.
    """
    import socket
    import sys

    saved = socket.has_ipv6
    if "vosk" not in sys.modules:
        socket.has_ipv6 = False
    try:
        import vosk
    finally:
        socket.has_ipv6 = saved
    vosk.SetLogLevel(-1)  # Kaldi's own log lines would go to standard error otherwise
    return vosk


def load_model(path: Path) -> Any:
    """The ``vosk.Model`` in the folder ``path``, loaded once per process and then shared.

    Raises :class:`ModelError` with a one-line explanation when the folder is missing
    or the model does not load. Nothing is ever downloaded here.
    """
    path = Path(path).expanduser().resolve()
    with _models_lock:
        if path in _models:
            return _models[path]
        if not path.is_dir():
            raise ModelError(f"no speech model at {path}: run `{command('model install')}`")
        vosk = import_vosk()
        try:
            # Only ever the path form: Model(lang=...) and Model(model_name=...) download.
            model = vosk.Model(str(path))
        except Exception as exc:  # noqa: BLE001 (Vosk raises a bare Exception)
            missing = [part for part in REQUIRED_FILES if not (path / part).is_file()]
            why = f"{exc}; missing {', '.join(missing)}" if missing else str(exc)
            raise ModelError(
                f"the speech model at {path} is broken ({why}); reinstall it with `{command('model install --force')}`"
            ) from None
        try:
            # A damaged decoding graph still loads: Vosk reads it (once, for the whole
            # model) only when the first recogniser is made, and then fails.
            vosk.KaldiRecognizer(model, MODEL_RATE)
        except Exception as exc:  # noqa: BLE001 (Vosk raises a bare Exception)
            raise ModelError(
                f"the speech model at {path} is broken ({exc}: its decoding graph in {path / 'graph'} does not "
                f"load); reinstall it with `{command('model install --force')}`"
            ) from None
        _models[path] = model
        return model


def vosk_recognizer(model: Any, rate: float, grammar: str | None) -> Recognizer:
    """A new ``vosk.KaldiRecognizer``: free-form, or restricted to ``grammar``."""
    vosk = import_vosk()
    if grammar is None:
        recognizer: Recognizer = vosk.KaldiRecognizer(model, rate)
    else:
        recognizer = vosk.KaldiRecognizer(model, rate, grammar)
    return recognizer


def command_phrases(model: Any, commands: Mapping[str, str]) -> dict[str, str]:
    """Spoken phrase -> command name, for the phrases whose every word the model knows.

    ``commands`` maps a command (one of :data:`VOICE_COMMANDS`, or a method to choose) to its phrases separated
    by "|", as in the locale's ``[commands]`` table.
    """
    phrases: dict[str, str] = {}
    for name in commands:
        if not is_voice_command(name):
            log.warning("unknown voice command %r ignored; expected one of %s", name, ", ".join(VOICE_COMMANDS))
    for phrase, name, unknown in vocabulary_check(model, commands):
        if unknown:
            log.warning("voice command phrase %r left out: the model does not know %s", phrase, ", ".join(unknown))
            continue
        phrases.setdefault(phrase, name)
    return phrases


def vocabulary_check(model: Any, commands: Mapping[str, str]) -> list[tuple[str, str, list[str]]]:
    """(phrase, command, words the model does not know) for every voice command phrase."""
    checked = []
    for name, spoken in commands.items():
        if not is_voice_command(name):
            continue
        for phrase in (" ".join(p.lower().split()) for p in spoken.split("|")):
            if phrase:
                unknown = [word for word in phrase.split() if model.vosk_model_find_word(word) == -1]
                checked.append((phrase, name, unknown))
    return checked


def command_grammar(model: Any, phrases: Mapping[str, str]) -> str:
    """The Vosk grammar (a JSON list) of these phrases, with "[unk]" when the model has it."""
    entries = list(phrases)
    if model.vosk_model_find_word(UNKNOWN_WORD) != -1:
        entries.append(UNKNOWN_WORD)
    else:
        log.warning("the speech model has no %s: any speech outside notes may be taken for a command", UNKNOWN_WORD)
    return json.dumps(entries, ensure_ascii=False)
