"""The volume at the table: the knob and "harder" / "zachter".

The level moves by ``[speech] volume_step`` per detent of the knob
(:class:`~assistant.core.events.VolumeStep`) or per spoken command (``louder``,
``softer``), between ``volume_min`` and ``volume_max``. It changes at once for
everything played after, the phrase being spoken included (the player applies it to
each block as it goes out, so nothing is rendered again).

Each step is heard at its new level: a short tone when the device is quiet; while it
speaks, the speech itself gets louder or softer. Turning past a bound says "Harder kan
niet." or "Zachter kan niet." instead (once: not again while it is still being said).

The level is kept in the data folder (:mod:`assistant.storage.volume`), so it survives a
restart; a kept level that cannot be used is one line in the log and the configured
volume. The volume is no part of the session: it never reaches the session, its journal
or its record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.core.events import Event, VoiceCommand, VolumeStep
from assistant.core.phrases import Phrases
from assistant.core.settings import SpeechSettings
from assistant.storage.volume import VolumeFileError, read_volume, volume_path, write_volume

log = logging.getLogger(__name__)

TONE = "volume"
"""The tone that lets the group hear a new level."""
_COMMAND_STEPS = {"louder": 1, "softer": -1}


class VolumeControl:
    """The level, its bounds and where it is kept; applies steps to the speaker."""

    def __init__(
        self,
        settings: SpeechSettings,
        phrases: Phrases,
        speaker: Any,
        data_dir: Path | None,
        say: Callable[[str, str], None],
    ) -> None:
        """Take the kept level from ``data_dir`` (None: nothing is kept, as when the data
        folder is refused) or else the configured one, and set the speaker to it."""
        self.settings = settings
        self.phrases = phrases
        self.speaker = speaker
        self.data_dir = data_dir
        self._say = say
        self._write_failed = False
        self.level = self._kept_level()
        """The current level, from ``volume_min`` to ``volume_max``."""
        self._apply()

    def handle(self, event: Event) -> bool:
        """A volume event (the knob, "harder", "zachter"): the level changes; True when it
        was one (nothing else sees it)."""
        if isinstance(event, VolumeStep):
            self.change(event.steps)
            return True
        if isinstance(event, VoiceCommand) and event.command in _COMMAND_STEPS:
            self.change(_COMMAND_STEPS[event.command])
            return True
        return False

    def change(self, steps: int) -> None:
        """Move the level ``steps`` steps (negative: softer), within the bounds, and let the group hear it."""
        if not steps:
            return
        s = self.settings
        wanted = round(min(s.volume_max, max(s.volume_min, self.level + steps * s.volume_step)), 4)
        speaking = self._speaking()
        if wanted == self.level:
            log.info("volume stays at %g: it is the %s", self.level, "loudest" if steps > 0 else "softest")
            if not speaking:  # the bound sentence once, not again for every further detent
                key = "volume_at_max" if steps > 0 else "volume_at_min"
                self._say(self.phrases.say(key), key)
            return
        log.info("volume %g -> %g", self.level, wanted)
        self.level = wanted
        self._apply()
        if not speaking:  # while it speaks, the speech itself is heard at the new level
            self.speaker.tone(TONE)
        self._keep()

    def _speaking(self) -> bool:
        is_speaking = getattr(self.speaker, "is_speaking", None)
        return bool(is_speaking()) if is_speaking is not None else False

    def _apply(self) -> None:
        if hasattr(self.speaker, "volume"):
            self.speaker.volume = self.level

    def _kept_level(self) -> float:
        """The level kept in the data folder when it is usable, else the configured one."""
        configured = self.settings.volume
        if self.data_dir is None:
            return configured
        try:
            kept = read_volume(self.data_dir)
        except VolumeFileError as exc:
            log.warning("%s; speaking at the configured volume %g", exc, configured)
            return configured
        if kept is None:
            return configured
        s = self.settings
        if not s.volume_min <= kept <= s.volume_max:
            log.warning("the kept volume %g in %s is outside [speech] volume_min %g to volume_max %g; speaking at the "
                        "configured volume %g", kept, volume_path(self.data_dir), s.volume_min, s.volume_max, configured)
            return configured
        if kept != configured:
            log.info("volume %g, as it was last set at the table (%s)", kept, volume_path(self.data_dir))
        return kept

    def _keep(self) -> None:
        """Write the level to the data folder; a failure is one warning (the level holds until a restart)."""
        if self.data_dir is None:
            return
        try:
            write_volume(self.data_dir, self.level)
        except OSError as exc:
            if not self._write_failed:
                log.warning("cannot keep the volume in %s (%s); it holds until the device restarts",
                            volume_path(self.data_dir), exc.strerror or exc)
            self._write_failed = True
            return
        if self._write_failed:
            log.info("the volume is kept again in %s", volume_path(self.data_dir))
        self._write_failed = False
