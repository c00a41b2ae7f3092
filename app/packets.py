"""What a client may send below Socket.IO: each incoming Engine.IO message is checked
before python-socketio parses it (checked_messages).

    malformed_json    a packet's JSON nesting too deep, a number too long, a lone
                      surrogate: refused on the raw text, before any parser sees it
"""
from __future__ import annotations

import json
import re
from typing import Callable

# what a client's JSON may be, checked on the raw text before any parser sees it: deeper
# nesting costs recursion (3,000 levels took the parser past its limit, with a traceback);
# a longer number costs int()'s quadratic conversion. No event of this protocol comes near.
MAX_DEPTH = 32
MAX_DIGITS = 40

# a string literal, or one that never closes, to the end of the text (group 1, the closing
# quote, is then empty). Every match succeeds where it starts, so the scan reads each
# character once. Requiring the closing quote made an unclosed string cost a re-scan from
# each escaped quote inside it: quadratic, and one 64 KB message of them held the
# interpreter, and so every visitor, for seconds (bench/abuse.py, attack "unclosed").
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*("?)', re.S)
_LONG_NUMBER = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_EVENT_ID = re.compile(r"^2(\d{1,12})\[")  # a Socket.IO event with an ack id, default namespace

# the malformed-packet callback: (eio_sid, kind, detail, ack_id or None)
OnMalformed = Callable[[str, str, str, "int | None"], None]


def checked_messages(handle: Callable[[str, object], object], report: OnMalformed) -> Callable[[str, object], object]:
    """An Engine.IO 'message' handler that passes a client's message on to handle
    (python-socketio's) only when it is a text packet of parseable JSON with an event
    name; otherwise it reports it (one line, no traceback) instead:

    * a packet that names a namespace is dropped: only the default one is served;
    * binary events and binary acks are dropped unread: this app's clients send none,
      and python-socketio would collect every attachment a binary packet's header
      announces (up to 10**10 of them);
    * a packet whose JSON nests deeper than MAX_DEPTH or holds a number longer than
      MAX_DIGITS is refused before parsing (an event with an id is answered);
    * one that fails to parse or has no event name is reported instead of raising
      (engineio would log a traceback for each)."""

    def checked(eio_sid, data):
        if isinstance(data, (bytes, bytearray)) or (isinstance(data, str) and data[:1] in ("5", "6")):
            return report(eio_sid, "binary", "binary packets are not accepted", None)
        if not isinstance(data, str):
            return report(eio_sid, "packet", "not a text packet", None)
        if data[1:2] == "/":
            # only the default namespace is served, and clients leave it out; python-socketio
            # cuts a namespace at '?', so '2/?"...' would reach it with a quote before the
            # JSON, which turns the checks below inside out
            return report(eio_sid, "namespace", "only the default namespace is served", None)
        problem = malformed_json(data)
        if problem:
            m = _EVENT_ID.match(data)
            return report(eio_sid, *problem, int(m[1]) if m else None)
        if data[:1] == "2" and not _has_event_name(data):
            return report(eio_sid, "no_event", "an event without a name", None)
        try:
            return handle(eio_sid, data)
        except Exception as e:  # a parse failure: one line from on_malformed, no traceback
            return report(eio_sid, "unparsable", f"{type(e).__name__}: {str(e)[:80]}", None)

    return checked


def malformed_json(text: str) -> tuple[str, str] | None:
    """Why a packet's JSON is refused before parsing, as (kind, detail); None: it may be
    parsed. Linear in the text, in regular expressions: strings are checked and blanked,
    then the structure is measured."""
    if "\\u" in text and any(_not_unicode(m[0]) for m in _STRINGS.finditer(text) if m[1] and "\\u" in m[0]):
        # a lone surrogate escape ("\ud800") decodes to a str that no UTF-8 encoder takes:
        # pydantic's error rendering, the log and the reply all raised on it
        return "not_unicode", "a string that is not valid Unicode (a lone surrogate escape)"
    bare = _STRINGS.sub('""', text)
    if _LONG_NUMBER.search(bare):
        return "long_number", f"a number longer than {MAX_DIGITS} digits"
    if bare.count("[") + bare.count("{") <= MAX_DEPTH:  # too few to nest deeper
        return None
    brackets = _NOT_BRACKETS.sub("", bare)
    depth = 0
    for c in brackets:
        depth += 1 if c in "[{" else -1
        if depth > MAX_DEPTH:
            return "too_deep", f"nesting deeper than {MAX_DEPTH} levels"
    return None


def _not_unicode(literal: str) -> bool:
    try:
        json.loads(literal).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return True
    return False



def _has_event_name(data: str) -> bool:
    """Socket.IO would index data[0] of an EVENT packet ('2[...]' after namespace and id):
    a string or a number is a name (a number is refused later as an unknown event)."""
    i = data.find("[")
    if i < 0:
        return False
    rest = data[i + 1:].lstrip()
    return bool(rest) and rest[0] not in "]{["
