"""The printed slip for the case-giver, built from a kept session record.

What the group takes home on paper: a title, the date and time, the method, each note
under its heading (or "geen notitie"), the ideas and closing sentences as lists, the
total time against the plan, and a last line that the notes stay with the group. Only
kept notes are on it: an attempt the case-giver asked to record again is left off, as
the group never confirmed it. The texts are the ``[slip]`` table of the record's locale;
the headings are the report's, so slip and report name a note the same way.
"""

from __future__ import annotations

from datetime import datetime

from assistant.core.record import SessionRecord
from assistant.core.slip import SlipLine
from assistant.storage.report import Report, build_report, clock


def build_slip(record: SessionRecord) -> list[SlipLine]:
    """The slip's paragraphs for ``record``, in the record's language."""
    report = build_report(record)
    texts = report.phrases.table("slip")
    heads = report.phrases.table("report")
    lines = [
        SlipLine(texts["title"], "title"),
        SlipLine("", "blank"),
        SlipLine(texts["date"].format(when=_when(report)), "text"),
        SlipLine(texts["method"].format(method=report.method_name), "text"),
    ]
    if not record.get("finished"):
        lines.append(SlipLine(heads["unfinished"], "text"))
    for head in report.notes():
        lines += [SlipLine("", "rule"), SlipLine(head.heading, "heading")]
        lines += _notes(report, head.key, head.running, texts["nothing"], heads["person"])
    data = report.data()
    time = texts["time"].format(actual=clock(data["actual_seconds"]), planned=clock(data["planned_seconds"]))
    lines += [SlipLine("", "rule"), SlipLine(time, "text"), SlipLine("", "blank"), SlipLine(texts["private"], "text")]
    return lines


def _notes(report: Report, kind: str, running: bool, nothing: str, person: str) -> list[SlipLine]:
    """A single note as a paragraph, a running note as list items; only what was kept."""
    if not running:
        note, _ = report.single(kind)
        if note is None or not note.accepted:
            return [SlipLine(nothing, "text")]
        return [SlipLine(note.text, "text")]
    items = [n for n in report.items(kind) if n.accepted]
    if not items:
        return [SlipLine(nothing, "text")]
    return [
        SlipLine((f"{person.format(number=n.person)}: " if n.person is not None else "") + n.text, "item")
        for n in items
    ]


def _when(report: Report) -> str:
    """The date and the start and end time, written as the report writes them."""
    heads = report.phrases.table("report")
    started, ended = _local(report.record.get("started_wall")), _local(report.record.get("ended_wall"))
    if started is None:
        return heads["unknown"]
    date = heads["date_format"].format(day=f"{started.day:02d}", month=f"{started.month:02d}", year=started.year)
    end = ended.strftime("%H:%M") if ended is not None else heads["unknown"]
    return heads["when"].format(date=date, start=started.strftime("%H:%M"), end=end)


def _local(wall: object) -> datetime | None:
    """A record's wall-clock time in the local time zone; None when it is not a number."""
    if isinstance(wall, bool) or not isinstance(wall, (int, float)):
        return None
    return datetime.fromtimestamp(wall).astimezone()
