"""Snippets: a passage of each hit around its matches, as written, for HTML (escaped) and JSON (raw)."""

import re
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy import bindparam, text
from sqlmodel import Session

START, STOP = "\x02", "\x03"
PG_BRACKETS = "\ue000\ue001"  # stand-ins for < and > in PostgreSQL headlines
_BRACKETS_BACK = str.maketrans(PG_BRACKETS, "<>")


@dataclass(frozen=True)
class Snippet:
    """A passage of what people wrote, as written (angle brackets included), and where the matches are."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()  # [start, end) offsets into text

    def html(self) -> Markup:
        """The text escaped, each match in <mark>."""
        parts: list[Markup] = []
        at = 0
        for start, end in self.marks:
            parts += [escape(self.text[at:start]), Markup("<mark>"), escape(self.text[start:end]), Markup("</mark>")]
            at = end
        return Markup("").join([*parts, escape(self.text[at:])])


def marked(raw: str) -> Snippet:
    """A Snippet from an engine's output with START/STOP around each match."""
    text_, marks, opened, length = [], [], 0, 0
    for piece in re.split(f"([{START}{STOP}])", raw):
        if piece == START:
            opened = length
        elif piece == STOP:
            marks.append((opened, length))
        else:
            text_.append(piece)
            length += len(piece)
    return Snippet("".join(text_), tuple(marks))


def passages(session: Session, dialect: str, match: str, ids: list[int]) -> dict[int, Snippet]:
    """Each of `ids`' passage around the matches of `match` (engine syntax), brackets and all."""
    if not ids:
        return {}
    if dialect == "postgresql":
        # PostgreSQL's parser drops `<...>` as markup: the text goes in with the brackets as private-use
        # characters it keeps (and words split as the index split them), and they are turned back below.
        statement = text(f"SELECT incident_id, ts_headline('english', translate(body, '<>', :brackets), "
                         f"to_tsquery('english', :m), "
                         f"'StartSel={START}, StopSel={STOP}, MaxWords=30, MinWords=10, MaxFragments=2') "
                         "FROM incident_document WHERE incident_id IN :ids")
    else:  # FTS5 splits words at angle brackets anyway, and its snippet quotes the stored text as is
        statement = text(f"SELECT rowid, snippet(incident_fts, 1, '{START}', '{STOP}', '…', 20) "
                         "FROM incident_fts WHERE incident_fts MATCH :m AND rowid IN :ids")
    rows = session.execute(statement.bindparams(bindparam("ids", expanding=True)),
                           {"m": match, "ids": ids, "brackets": PG_BRACKETS}).all()
    return {r[0]: marked(r[1].translate(_BRACKETS_BACK)) for r in rows}
