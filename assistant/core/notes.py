"""Taking notes: the part of the session that decides when to listen and what to keep.

Pure like the session (it is one of its parts): events in, effects out, no audio.

Two kinds of notes (see :class:`assistant.core.method.Note`; the built-in ones are
:data:`assistant.core.method.CAPTURE_KINDS`, and a method may define its own):

- A *single* note (leervraag, kernvraag, actieplan, a method's own "casus") is said in one go. The device
  invites it after a tone (on a press, or by itself when ``invite_minutes_left`` is
  reached), listens until it is quiet, reads back what it heard, and a press keeps it
  while a double press records it again (every attempt stays in the record). A
  leervraag without a first-person word gets one gentle question about it.
- A *running* note (ideas, takeaways, a method's own "adviezen") listens through the phase and keeps every
  utterance as one item, without reading anything back: the group talks on.

Stages of a single note::

    waiting --press/invite mark--> listening --Heard--> reading_back --press--> done
                                       |  ^                  |
                              button   |  +--double press----+
                              down     v
                                     ending --Heard--> reading_back

The button going down while listening ends the recording at once (before the speech
it would cut); the gesture that follows is then used up by that, so its press does not
also keep the note unheard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.core.events import Effect, Heard, Listen, Say, StopListening, Tone
from assistant.core.method import Note, Phase
from assistant.core.phrases import Phrases
from assistant.core.record import CaptureItem

WAITING, LISTENING, ENDING, READING_BACK, DONE = "waiting", "listening", "ending", "reading_back", "done"
"""Stages of a single note."""
RUNNING, STOPPED = "running", "stopped"
"""Stages of a running note."""

_WORD = re.compile(r"[\w'’]+", re.UNICODE)


@dataclass
class NoteRun:
    """The note of one phase run."""

    kind: str
    """What is noted: the key of the phase's :class:`~assistant.core.method.Note`."""
    phase: int
    """Number of the phase it belongs to."""
    continuous: bool
    stage: str
    invite_at: float | None = None
    """Active seconds into the phase at which the device invites the note by itself."""
    attempts: int = 0
    """How many times the device listened for this (single) note."""
    hinted: bool = False
    """Whether the first-person question was asked for this note."""
    pending: CaptureItem | None = None
    """The attempt being read back (also in the captures, not yet accepted)."""
    swallow: bool = False
    """The next press or double press only ended a recording: ignore it."""
    wanted: bool = False
    """Listening waits for the recogniser (loading, or the microphone came back)."""
    after_pause: bool = False
    """A pause interrupted the note: listen again when the session goes on."""
    name: str = ""
    """How the device names it ("de adviezen"); "" for a built-in note (the locale's name)."""

    @property
    def busy(self) -> bool:
        """Whether the device is recording this note right now (announcements wait)."""
        return self.stage in (LISTENING, ENDING)

    @property
    def recording(self) -> bool:
        """Whether the recogniser is writing this note down now: a single note being said,
        or a running note through its phase (the status LED shows it)."""
        return self.busy or self.stage == RUNNING


def first_person(text: str, words: frozenset[str]) -> bool:
    """Whether ``text`` has one of the first-person ``words`` in it (case-insensitive)."""
    return any(token.lower().replace("’", "'") in words for token in _WORD.findall(text))


@dataclass
class NoteTaker:
    """Notes across one session: the recogniser's state, and what was said about it."""

    phrases: Phrases
    first_person_hint: bool = True
    listener: str = "off"
    """The recogniser's latest state (see :data:`assistant.core.events.LISTENER_STATES`)."""
    told_unavailable: bool = False
    """Whether the device already said that it cannot take notes (once per session)."""
    privacy_notice: bool = False
    """Say once per session, before the first note, what is written down and that no sound
    is kept (the daemon's sessions do; the session logic's own tests leave it out)."""
    told_privacy: bool = False
    """Whether the device said what it writes down and that it keeps no sound: once per
    session, when it first listens for a note. Replaying the journal sets it again, as
    the live session did, so a resumed session does not say it twice."""
    captures: dict[str, list[CaptureItem]] = field(default_factory=dict)
    """Everything noted, by kind: shared with the session's record."""

    @property
    def ready(self) -> bool:
        """Whether notes can be taken now."""
        return self.listener == "ready"

    # --- phase boundaries --------------------------------------------------------------

    def start_phase(self, phase: Phase, planned: float) -> tuple[NoteRun | None, list[Effect]]:
        """The note of a phase that begins, and what to say or start for it."""
        if phase.note is None or self.listener == "off":
            return None, []
        kind, name = phase.note.key, phase.note.name
        if phase.note.running:
            note = NoteRun(kind, phase.number, continuous=True, stage=STOPPED, wanted=True, name=name)
            return note, self._start_running(note)
        invite_at = planned - phase.invite_minutes_left * 60 if phase.invite_minutes_left else None
        note = NoteRun(kind, phase.number, continuous=False, stage=WAITING, invite_at=invite_at, name=name)
        if not self.ready:
            return note, []
        return note, [Say(self.phrases.say("note_hint", note=self._name(note)), "note_hint")]

    def end_phase(self, note: NoteRun | None) -> list[Effect]:
        """The phase ends: stop listening (a running note keeps its last utterance)."""
        if note is None:
            return []
        note.wanted = note.after_pause = False
        if note.continuous and note.stage == RUNNING:
            note.stage = STOPPED
            return [StopListening(finish=True)]
        if note.busy:
            note.stage = WAITING
            return [StopListening(finish=False)]
        return []

    # --- gestures ----------------------------------------------------------------------

    def button_down(self, note: NoteRun | None) -> list[Effect]:
        """The button went down: a recording ends now, before the tone is heard."""
        if note is None or note.stage != LISTENING:
            return []
        note.stage = ENDING
        note.swallow = True
        return [StopListening(finish=True)]

    def swallowed(self, note: NoteRun | None) -> bool:
        """Whether this press or double press only finished a recording."""
        if note is None or not note.swallow:
            return False
        note.swallow = False
        return True

    def press(self, note: NoteRun | None) -> tuple[bool, list[Effect]]:
        """A short press; (handled, effects). Not handled: the session moves on as usual."""
        if note is None or note.continuous:
            return False, []
        if note.stage == WAITING:
            if self.ready:
                return True, self.invite(note)
            if self.listener == "loading":
                if note.wanted:
                    return False, []  # told once already: this press moves on
                note.wanted = True
                return True, [Say(self.phrases.say("note_loading", note=self._name(note)), "note_loading")]
            return False, self._unavailable()
        if note.busy:
            note.stage = ENDING
            return True, [StopListening(finish=True)]
        if note.stage == READING_BACK:
            keep = note.pending is not None and bool(note.pending["text"])
            if keep:
                assert note.pending is not None
                note.pending["accepted"] = True
            note.pending = None
            note.stage = DONE
            if keep:
                return True, [Say(self.phrases.say("note_saved"), "note_saved")]
            return False, []  # nothing was heard: "press once to go on" goes on
        return False, []

    def double_press(self, note: NoteRun | None) -> tuple[bool, list[Effect]]:
        """A double press: record the note again while it is read back."""
        if note is None or note.continuous or note.stage != READING_BACK:
            return False, []
        note.pending = None
        return True, self.invite(note, again=True)

    def pause(self, note: NoteRun | None) -> list[Effect]:
        """The session pauses: stop listening, and listen again after the pause."""
        if note is None:
            return []
        if note.continuous and note.stage == RUNNING:
            note.stage = STOPPED
            note.after_pause = True
            return [StopListening(finish=True)]
        if note.busy:
            note.stage = WAITING
            note.swallow = False
            note.after_pause = True
            return [StopListening(finish=False)]
        return []

    def unpause(self, note: NoteRun | None) -> list[Effect]:
        """The session goes on after a pause."""
        if note is None or not note.after_pause:
            return []
        note.after_pause = False
        if note.continuous:
            note.wanted = True
            return self._start_running(note)
        return self.invite(note, again=True)

    # --- the recogniser ----------------------------------------------------------------

    def invite(self, note: NoteRun, again: bool = False) -> list[Effect]:
        """Ask for a single note and start listening after the tone."""
        if not self.ready:
            note.wanted = self.listener == "loading"
            if note.wanted:
                return [Say(self.phrases.say("note_loading", note=self._name(note)), "note_loading")]
            return self._unavailable()
        note.wanted = False
        note.invite_at = None
        note.stage = LISTENING
        note.attempts += 1
        text = self.phrases.say("note_again") if again else self.phrases.say("note_invite", note=self._name(note))
        return [*self._privacy(), Say(text, "note_again" if again else "note_invite"), Tone("listen"), Listen(note.kind)]

    def heard(self, event: Heard, note: NoteRun | None, notes: list[NoteRun], now: float, person: int | None) -> list[Effect]:
        """Speech came back from the recogniser."""
        if note is not None and not note.continuous and note.kind == event.kind and note.busy:
            return self._read_back(event, note, now)
        # A running note: its phase may just have ended (the last utterance comes after).
        running = next((n for n in reversed(notes) if n.continuous and n.kind == event.kind), None)
        if running is not None and event.text.strip():
            item: CaptureItem = {
                "text": event.text.strip(),
                "accepted": True,
                "t": now,
                "phase": running.phase,
                "words": list(event.words),
            }
            if person is not None and running is note:
                item["person"] = person
            self.captures.setdefault(event.kind, []).append(item)
        return []

    def listener_changed(self, state: str, note: NoteRun | None, paused: bool) -> list[Effect]:
        """The recogniser became (un)usable."""
        was_ready = self.ready
        self.listener = state
        if state == "ready":
            back: list[Effect] = []
            if self.told_unavailable:
                # The group was told notes are impossible: tell them they work again (and
                # tell them once more if the microphone goes away again).
                self.told_unavailable = False
                if not paused:
                    back.append(Say(self.phrases.say("note_available"), "note_available"))
            if note is None or paused:
                return back
            if not note.wanted:
                if back and not note.continuous and note.stage == WAITING:
                    back.append(Say(self.phrases.say("note_hint", note=self._name(note)), "note_hint"))
                return back
            if note.continuous:
                return back + self._start_running(note)
            return back + self.invite(note)
        if note is None:
            return []
        if was_ready and state != "loading":
            if note.continuous and note.stage == RUNNING:
                note.stage = STOPPED
                note.wanted = True  # start again when the microphone is back
                return self._unavailable()
            if note.busy:
                return self._unavailable()  # the recogniser still delivers what it heard
        return []

    def resume(self, note: NoteRun | None, paused: bool) -> list[Effect]:
        """The daemon restarted mid-phase: take up the note where it was."""
        if note is None:
            return []
        if note.continuous:
            if note.stage == RUNNING:
                note.stage = STOPPED
                if paused:
                    note.after_pause = True
                    return []
                note.wanted = True
                return self._start_running(note)
            return []
        if note.stage == READING_BACK and note.pending is not None:
            return self._read_back_texts(note)
        if note.busy:
            note.stage = WAITING
            note.swallow = False
            if paused:
                note.after_pause = True
                return []
            return self.invite(note, again=True)
        return []

    # --- texts -------------------------------------------------------------------------

    def fixed_phrases(self, phases: tuple[Phase, ...]) -> list[str]:
        """Texts about notes that will certainly be said, for rendering ahead of time."""
        p = self.phrases
        texts = [p.say("note_again"), p.say("note_confirm"), p.say("note_nothing"), p.say("note_saved")]
        texts.append(p.say("note_unavailable"))
        texts.append(p.say("note_available"))
        if any(phase.note is not None for phase in phases):
            texts.append(p.say("privacy_notice"))
        for phase in phases:
            if phase.note is None:
                continue
            name = note_name(p, phase.note)
            if phase.note.running:
                texts.append(p.say("note_running", note=name))
            else:
                texts.append(p.say("note_hint", note=name))
                texts.append(p.say("note_invite", note=name))
        return texts

    def _read_back(self, event: Heard, note: NoteRun, now: float) -> list[Effect]:
        text = event.text.strip()
        note.stage = READING_BACK
        item: CaptureItem = {
            "text": text,
            "accepted": False,
            "t": now,
            "phase": note.phase,
            "attempt": note.attempts,
            "words": list(event.words),
        }
        if text and note.kind == "leervraag":
            item["first_person"] = first_person(text, self._first_person_words())
        if text:
            self.captures.setdefault(note.kind, []).append(item)
        note.pending = item
        return self._read_back_texts(note)

    def _read_back_texts(self, note: NoteRun) -> list[Effect]:
        p = self.phrases
        item = note.pending
        assert item is not None
        if not item["text"]:
            return [Say(p.say("note_nothing"), "note_nothing")]
        effects: list[Effect] = [Say(p.say("note_heard", text=item["text"]), "note_heard")]
        if self.first_person_hint and item.get("first_person") is False and not note.hinted:
            note.hinted = True
            effects.append(Say(p.say("note_first_person"), "note_first_person"))
        else:
            effects.append(Say(p.say("note_confirm"), "note_confirm"))
        return effects

    def _start_running(self, note: NoteRun) -> list[Effect]:
        if not self.ready:
            if self.listener == "loading":
                return []  # starts by itself when the model is ready
            return self._unavailable()
        note.wanted = False
        note.stage = RUNNING
        running = Say(self.phrases.say("note_running", note=self._name(note)), "note_running")
        return [*self._privacy(), running, Listen(note.kind, True)]

    def _privacy(self) -> list[Effect]:
        """Before the device first listens in a session: what it writes down, and that it keeps no sound."""
        if self.told_privacy or not self.privacy_notice:
            return []
        self.told_privacy = True
        return [Say(self.phrases.say("privacy_notice"), "privacy_notice")]

    def _unavailable(self) -> list[Effect]:
        if self.told_unavailable or self.listener == "off":
            return []
        self.told_unavailable = True
        return [Say(self.phrases.say("note_unavailable"), "note_unavailable")]

    def _name(self, note: NoteRun) -> str:
        return note.name or self.phrases.table("notes").get(note.kind, note.kind)

    def _first_person_words(self) -> frozenset[str]:
        return frozenset(self.phrases.say("first_person_words").lower().split())


def note_name(phrases: Phrases, note: Note) -> str:
    """How the device names ``note`` in a sentence: its own name, or the locale's for a built-in one."""
    return note.name or phrases.table("notes").get(note.key, note.key)
