"""Links that say what happened: the patient a page link asks for, or one sentence saying why not.

A link to the Patient page carries a patient id (``?patient=…``) that anybody can type. The page must
open that patient only when the user may see them, and otherwise say so in words that give nothing
away: the same sentence whether the id is another clinic's patient or nobody at all, so that a link
cannot be used to probe which pseudonyms exist. The id is untrusted text, so it is shown as plain
text: control characters replaced, cut to ``SHOWN_CHARS`` characters, and escaped for Markdown by
``PatientLink.markdown`` (Streamlit renders Markdown in its messages).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

NOT_VISIBLE = "Patient {patient} is not in the data you can see"
SHOWN_CHARS = 64
"""A pseudonym has at most 64 characters (SPEC §2): anything longer is cut to that, the last one '…'."""
_INLINE = re.compile(r"[\\`*_\[\](){}!$<>~|#]|:(?=[A-Za-z])")


def escape_markdown(text: object) -> str:
    """Data-derived text (a patient id, a clinic name, a discontinuation reason, a file name) for a place
    that renders Markdown, shown as typed: the characters that open an inline construct are backslash-escaped
    (CommonMark shows an escaped punctuation character as itself): emphasis and code (* _ `), links and images
    ([ ] ( ) !, so ``![x](http://host/x.png)`` makes no browser fetch anything), LaTeX ($), HTML (< >),
    strike-through (~), tables (|), braces, and a colon before a letter (Streamlit's ``:red[...]`` and
    ``:material/...:``); so is a block marker at the start (# - + = > or a number with . or )). Line breaks
    and runs of white space become one space, so no text starts a new block."""
    flat = " ".join(str(text).split())
    out = _INLINE.sub(r"\\\g<0>", flat)
    out = re.sub(r"^(\d+)([.)])", r"\1\\\2", out)  # "1. x" would start a list: escape its dot
    return re.sub(r"^[-+=>]", r"\\\g<0>", out)


@dataclass(frozen=True)
class PatientLink:
    """The outcome of a link: ``patient_id`` when the user may see that patient, else ``message`` (plain text).

    Both are None when the link names no patient.
    """

    patient_id: str | None = None
    message: str | None = None

    def markdown(self) -> str | None:
        """``message`` with every ASCII punctuation character backslash-escaped, for st.warning and st.markdown."""
        return None if self.message is None else escape_markdown(self.message)


def shown_id(requested: str) -> str:
    """A requested id as plain text: non-printable characters as '�', at most ``SHOWN_CHARS`` characters."""
    printable = "".join(c if c.isprintable() else "\ufffd" for c in requested)
    return printable if len(printable) <= SHOWN_CHARS else printable[: SHOWN_CHARS - 1] + "…"


def patient_from_link(requested: str | None, visible: Collection[str]) -> PatientLink:
    """The patient a link asks for, when ``visible`` (the ids the user may see) holds it; otherwise the sentence
    "Patient X is not in the data you can see", the same whether X is unknown or another clinic's patient.

    Surrounding whitespace is ignored (a pasted link); an empty id is no request at all.
    """
    if requested is None or not requested.strip():
        return PatientLink()
    wanted = requested.strip()
    if wanted in visible:
        return PatientLink(patient_id=wanted)
    return PatientLink(message=NOT_VISIBLE.format(patient=shown_id(wanted)))
