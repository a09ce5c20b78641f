"""Rendering a LinuxKit YAML template so that no value can change the document.

:func:`render_yaml` substitutes ``${VAR}`` / ``${VAR:-default}`` (the rules
of :mod:`lk_core.templating`) so that *a value can never change the structure
of the document*: each value is escaped for the spot it lands in (plain
scalar, double- or single-quoted scalar, block scalar, comment), the result is
parsed, and it is compared with what the template means; a value that cannot
be placed exactly is refused with a one-line
:class:`~lk_core.errors.TemplateError`.

PyYAML is imported only inside the functions that need it.
"""

from __future__ import annotations

import bisect
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from lk_core.errors import MissingVariablesError, TemplateError

# The engine's own tokenizer, so that rendering here follows exactly the rules
# of lk_core.templating (escapes, defaults, single pass).
from lk_core.templating import extract_variables, tokens

__all__ = ["dq_escape", "is_plain_safe", "render_yaml", "yaml_error_location", "yaml_problem"]


# ---------------------------------------------------------------------------
# Escaping: pure helpers
# ---------------------------------------------------------------------------

# Line breaks as YAML (1.1, PyYAML) sees them.
_LINE_BREAKS = "\r\n\x85\u2028\u2029"
_DQ_NAMED = {
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def _needs_escape(char: str) -> bool:
    """True for characters that cannot appear literally in a YAML scalar."""
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or char in "\ufeff\ufffe\uffff\u2028\u2029"
    )


def _escape_char(char: str) -> str:
    if char in _DQ_NAMED:
        return _DQ_NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def dq_escape(text: str, leading_space: bool = False, trailing_space: bool = False) -> str:
    """Escape ``text`` for the inside of a YAML double-quoted scalar.

    Backslashes, double quotes, line breaks, tabs and every non-printable
    character become escapes, so the result is one line. With
    ``leading_space`` / ``trailing_space`` the spaces at that end are escaped
    too (needed where line folding would strip them: at the start or end of a
    line of a multi-line quoted scalar). ``'"' + dq_escape(t) + '"'`` always
    loads as ``t``.
    """
    out = [_escape_char(c) if c in _DQ_NAMED or _needs_escape(c) else c for c in text]
    if leading_space:
        for index, char in enumerate(text):
            if char != " ":
                break
            out[index] = "\\x20"
    if trailing_space:
        for index in range(len(text) - 1, -1, -1):
            if text[index] != " ":
                break
            out[index] = "\\x20"
    return "".join(out)


def _dq(text: str) -> str:
    return '"' + dq_escape(text) + '"'


# YAML 1.2 core-schema scalars that are not strings (Go's yaml.v3, which
# LinuxKit uses, follows 1.2; PyYAML's resolver covers 1.1).
_YAML12_TYPED = re.compile(
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|true|True|TRUE|false|False|FALSE|null|Null|NULL|~"
)
_PLAIN_FIRST_BAD = set("-?:,[]{}#&*!|>'\"%@` \t")


def _resolve_tag(text: str) -> str:
    from yaml.nodes import ScalarNode
    from yaml.resolver import Resolver

    resolve: Callable[..., str] = Resolver().resolve
    return resolve(ScalarNode, text, (True, False))


def is_plain_safe(text: str, flow: bool = False) -> bool:
    """Whether ``text`` can be a plain (unquoted) YAML scalar that reads back as itself.

    Conservative: no leading/trailing space, no tabs, line breaks or
    non-printable characters, no indicator as the first character, no ``': '``,
    ``' #'`` or trailing ``':'``, no ``,[]{}?:`` inside a flow collection
    (``flow=True``), and not something YAML 1.1 or 1.2 reads as another type
    (``yes``, ``0600``, ``1e3``, ``null``...) or as a document marker.
    """
    if not text or text[0] in _PLAIN_FIRST_BAD or text[-1] in " \t:":
        return False
    if any(c in "\t" + _LINE_BREAKS or _needs_escape(c) for c in text):
        return False
    if ": " in text or " #" in text or text.startswith(("---", "...")):
        return False
    if flow and any(c in ",[]{}?:" for c in text):
        return False
    if _YAML12_TYPED.fullmatch(text):
        return False
    return _resolve_tag(text) == "tag:yaml.org,2002:str"


# ---------------------------------------------------------------------------
# Rendering: a light YAML scanner that finds where each value lands
# ---------------------------------------------------------------------------


@attrs.frozen
class _Region:
    """A lexical region of the document: a scalar, a comment or a block scalar."""

    kind: str  # plain | double | single | block | comment | other
    start: int  # for a block scalar: where its content starts
    end: int
    flow: bool = False
    # Block scalars only: the indicator (``|``/``>`` plus chomping/indentation)
    # at header_start..header_end, and the column of the node that owns it.
    indicators: str = ""
    parent_col: int = 0
    header_start: int = 0
    header_end: int = 0
    content_indent: int = 0


def _eol(text: str, i: int) -> int:
    j = text.find("\n", i)
    return len(text) if j < 0 else j


def _end_double(text: str, i: int) -> int:
    j, n = i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    return n


def _end_single(text: str, i: int) -> int:
    j, n = i + 1, len(text)
    while j < n:
        if text[j] == "'":
            if j + 1 < n and text[j + 1] == "'":
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _end_plain(text: str, i: int, flow: bool) -> int:
    j, n = i, len(text)
    while j < n:
        c = text[j]
        if c == "\n":
            break
        if c in " \t":
            k = j
            while k < n and text[k] in " \t":
                k += 1
            if k >= n or text[k] in "#\n":
                break
            j = k
            continue
        if c == ":" and (j + 1 >= n or text[j + 1] in " \t\n" or (flow and text[j + 1] in ",[]{}")):
            break
        if flow and c in ",?[]{}":
            break
        j += 1
    return j


def _scan_block(text: str, start: int, indicators: str, parent_col: int) -> tuple[int, int]:
    """Return ``(end, content_indent)`` of block scalar content starting at ``start``."""
    n = len(text)
    digits = "".join(c for c in indicators if c.isdigit())
    indent = parent_col + int(digits) if digits else 0
    pos = start
    if not digits:
        max_blank = 0
        while pos < n:
            eol = _eol(text, pos)
            line = text[pos:eol]
            spaces = len(line) - len(line.lstrip(" "))
            if line.strip(" ") == "":
                max_blank = max(max_blank, spaces)
                pos = eol + 1
                continue
            indent = max(max_blank, spaces, parent_col + 1)
            break
        else:
            return n, max(parent_col + 1, 1)
        if spaces < parent_col + 1:
            return pos, parent_col + 1
    while pos < n:
        eol = _eol(text, pos)
        line = text[pos:eol]
        spaces = len(line) - len(line.lstrip(" "))
        if line.strip(" ") != "" and spaces < indent:
            return pos, indent
        pos = eol + 1
    return n, indent


def _scan_regions(text: str) -> list[_Region]:
    """Split YAML ``text`` into the regions where values may land, in order."""
    regions: list[_Region] = []
    n = len(text)
    i = 0
    flow = 0
    line_start = 0
    node_col = 0
    after_quoted = False
    pending: tuple[int, int, str, int] | None = None
    while i < n:
        ch = text[i]
        if ch == "\n":
            i += 1
            line_start = i
            after_quoted = False
            if pending is not None:
                header_start, header_end, indicators, parent = pending
                pending = None
                end, indent = _scan_block(text, i, indicators[1:], parent)
                regions.append(
                    _Region(
                        "block", i, end, False, indicators, parent, header_start, header_end, indent
                    )
                )
                i = line_start = end
            eol = _eol(text, i)
            line = text[i:eol]
            node_col = len(line) - len(line.lstrip(" "))
            continue
        if ch in " \t\r":
            i += 1
            continue
        col = i - line_start
        if col == 0 and flow == 0:
            if text.startswith(("---", "..."), i) and (i + 3 >= n or text[i + 3] in " \t\n"):
                i += 3
                continue
            if ch == "%":
                end = _eol(text, i)
                regions.append(_Region("other", i, end))
                i = end
                continue
        if ch == "#" and (i == line_start or text[i - 1] in " \t"):
            end = _eol(text, i)
            regions.append(_Region("comment", i, end))
            i = end
            continue
        if ch == '"' or ch == "'":
            end = _end_double(text, i) if ch == '"' else _end_single(text, i)
            regions.append(_Region("double" if ch == '"' else "single", i, end, flow > 0))
            node_col = col
            i = end
            after_quoted = True
            continue
        if ch in "[{":
            flow += 1
            i += 1
            continue
        if ch in "]}":
            flow = max(0, flow - 1)
            i += 1
            continue
        if ch == "," and flow:
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else "\n"
        if ch == ":" and (flow or after_quoted or nxt in " \t\n"):
            i += 1
            after_quoted = False
            continue
        if ch in "-?" and (nxt in " \t\n" or (flow and nxt in ",[]{}")):
            node_col = col
            i += 1
            continue
        after_quoted = False
        if ch in "|>" and flow == 0:
            j = i + 1
            while j < n and text[j] in "+-0123456789":
                j += 1
            pending = (i, j, text[i:j], node_col)
            i = j
            continue
        if ch in "&*!":
            j = i + 1
            while j < n and text[j] not in " \t\n" and not (flow and text[j] in ",[]{}"):
                j += 1
            regions.append(_Region("other", i, j))
            i = j
            continue
        end = _end_plain(text, i, flow > 0)
        if end == i:  # a lone indicator the scanner does not know: skip it
            i += 1
            continue
        regions.append(_Region("plain", i, end, flow > 0))
        node_col = col
        i = end
    if pending is not None:
        header_start, header_end, indicators, parent = pending
        regions.append(
            _Region("block", n, n, False, indicators, parent, header_start, header_end, parent + 1)
        )
    return sorted(regions, key=lambda r: r.start)


# ---------------------------------------------------------------------------
# Rendering: putting the values in
# ---------------------------------------------------------------------------


@attrs.frozen
class _Slot:
    """One ``${NAME}`` occurrence that receives a given value."""

    start: int  # in the sentinel text
    end: int
    sentinel: str
    name: str
    value: str
    default: str | None
    source_offset: int  # where the reference is in the template


@attrs.frozen
class _Segment:
    """A piece of the sentinel text and where it comes from in the template."""

    start: int
    source_start: int
    length: int
    literal: bool


class _Refused(Exception):
    def __init__(self, slot: _Slot, reason: str) -> None:
        super().__init__(reason)
        self.slot = slot
        self.reason = reason


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def yaml_error_location(error: Exception) -> tuple[int, int] | None:
    """``(line, column)`` (1-based) of a PyYAML parse error, if it has a mark."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is None:
        return None
    return int(mark.line) + 1, int(mark.column) + 1


def yaml_problem(error: Exception) -> str:
    """The one-line problem of a PyYAML error, without its marks."""
    problem = getattr(error, "problem", None) or getattr(error, "context", None)
    return " ".join(str(problem or error).split())


def _load(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _same(a: Any, b: Any) -> bool:
    """Structural equality that treats NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _Substituter:
    """Replaces sentinels by values in a loaded document (the meaning it must have)."""

    def __init__(self, slots: Sequence[_Slot], pattern: re.Pattern[str], typed: dict[str, Any]):
        self.values = {s.sentinel: s.value for s in slots}
        self.pattern = pattern
        self.typed = typed

    def text(self, value: str) -> Any:
        if value in self.typed:
            return self.typed[value]
        return self.pattern.sub(lambda m: self.values.get(m.group(0), m.group(0)), value)

    def __call__(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, dict):
            return {self(k): self(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self(item) for item in node]
        return node


def _prepare(
    content: str, variables: Mapping[str, str]
) -> tuple[str, list[_Slot], list[_Segment], str]:
    """Render with a unique sentinel per given reference; return text, slots, segments, token."""
    required, _ = extract_variables(content)
    missing = [name for name in required if name not in variables]
    if missing:
        raise MissingVariablesError(missing)
    token = secrets.token_hex(6)
    while token in content or any(token in v for v in variables.values()):
        token = secrets.token_hex(6)  # pragma: no cover - astronomically unlikely
    parts: list[str] = []
    slots: list[_Slot] = []
    segments: list[_Segment] = []
    position = 0
    length = 0

    def literal(text: str, source_start: int) -> None:
        nonlocal length
        if text:
            segments.append(_Segment(length, source_start, len(text), True))
            parts.append(text)
            length += len(text)

    for tok in tokens(content):
        literal(content[position : tok.start], position)
        position = tok.end
        if tok.escaped:
            literal(tok.reference, tok.start)
        elif tok.name in variables:
            sentinel = f"zlk{token}{len(slots):05d}z"
            slots.append(
                _Slot(
                    length,
                    length + len(sentinel),
                    sentinel,
                    tok.name,
                    variables[tok.name],
                    tok.default,
                    tok.start,
                )
            )
            segments.append(_Segment(length, tok.start, len(sentinel), False))
            parts.append(sentinel)
            length += len(sentinel)
        elif tok.default is not None:
            segments.append(_Segment(length, tok.start, len(tok.default), False))
            parts.append(tok.default)
            length += len(tok.default)
    literal(content[position:], position)
    return "".join(parts), slots, segments, token


def _source_offset(segments: Sequence[_Segment], offset: int) -> int:
    """Map an offset of the sentinel text back to the template."""
    starts = [s.start for s in segments]
    index = bisect.bisect_right(starts, offset) - 1
    if index < 0:
        return offset
    segment = segments[index]
    if segment.literal:
        return segment.source_start + min(offset - segment.start, segment.length)
    return segment.source_start


def _block_value(region: _Region, body: str) -> Any:
    """Load one block scalar on its own: ``body`` is its content text."""
    snippet = " " * region.parent_col + "k: " + region.indicators + "\n" + body
    try:
        loaded = _load(snippet)
    except Exception:
        return None
    if isinstance(loaded, dict) and set(loaded) == {"k"}:
        return loaded["k"]
    return None


class _Renderer:
    """Computes the edits that put each value into the sentinel text."""

    def __init__(self, text: str, slots: list[_Slot], pattern: re.Pattern[str]) -> None:
        self.text = text
        self.slots = slots
        self.pattern = pattern
        self.typed: dict[str, Any] = {}

    def _put(self, start: int, end: int, slots: Sequence[_Slot], values: Sequence[str]) -> str:
        out, pos = [], start
        for slot, value in zip(slots, values, strict=True):
            out.append(self.text[pos : slot.start])
            out.append(value)
            pos = slot.end
        out.append(self.text[pos:end])
        return "".join(out)

    def edits(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        handler = getattr(self, "_" + region.kind)
        result: list[tuple[int, int, str]] = handler(region, slots)
        return result

    def _plain(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        candidate = self._put(region.start, region.end, slots, [s.value for s in slots])
        whole = len(slots) == 1 and (slots[0].start, slots[0].end) == (region.start, region.end)
        if whole and slots[0].default is not None:
            default_tag = _resolve_tag(slots[0].default)
            if (
                default_tag != "tag:yaml.org,2002:str"
                and _resolve_tag(candidate) == default_tag
                and candidate == candidate.strip()
                and not any(c in "\t#:,[]{}" + _LINE_BREAKS or _needs_escape(c) for c in candidate)
            ):
                # The template's default is typed (a number...): a value of the same
                # type keeps it.
                self.typed[slots[0].sentinel] = _load(candidate)
                return [(region.start, region.end, candidate)]
        if is_plain_safe(candidate, region.flow):
            return [(region.start, region.end, candidate)]
        return [(region.start, region.end, _dq(candidate))]

    def _edge_spaces(self, region: _Region, slot: _Slot) -> tuple[bool, bool]:
        """Whether line folding would strip spaces at the start / end of this value."""
        line_start = self.text.rfind("\n", 0, slot.start) + 1
        leading = (
            line_start > region.start and self.text[line_start : slot.start].strip(" \t") == ""
        )
        k = slot.end
        while k < region.end and self.text[k] in " \t":
            k += 1
        trailing = k < region.end and self.text[k] == "\n"
        return leading, trailing

    def _double(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        edits = []
        for slot in slots:
            leading, trailing = self._edge_spaces(region, slot)
            start, end, before, after = slot.start, slot.end, "", ""
            if slot.value == "" and leading and trailing:
                raise _Refused(
                    slot,
                    "an empty value alone on a line of a multi-line quoted scalar "
                    "would turn into a line break",
                )
            if slot.value == "" and trailing:
                # The template's own blanks before the value would end the line.
                while start > region.start and self.text[start - 1] in " \t":
                    start -= 1
                before = dq_escape(self.text[start : slot.start], True, True)
            elif slot.value == "" and leading:
                while end < region.end and self.text[end] in " \t":
                    end += 1
                after = dq_escape(self.text[slot.end : end], True, True)
            edits.append((start, end, before + dq_escape(slot.value, leading, trailing) + after))
        return edits

    def _single(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        simple = True
        for slot in slots:
            leading, trailing = self._edge_spaces(region, slot)
            if (
                any(c in _LINE_BREAKS or _needs_escape(c) for c in slot.value)
                or (leading and slot.value[:1] in ("", " ", "\t"))
                or (trailing and slot.value[-1:] in ("", " ", "\t"))
            ):
                simple = False
        if simple:
            return [(s.start, s.end, s.value.replace("'", "''")) for s in slots]
        if "\n" in self.text[region.start : region.end]:
            raise _Refused(
                slots[0],
                "it would need escapes, which a multi-line single-quoted scalar cannot have",
            )
        # Rewrite the whole scalar double-quoted.
        pieces, pos = [], region.start + 1
        for slot in slots:
            pieces.append(self.text[pos : slot.start].replace("''", "'"))
            pieces.append(slot.value)
            pos = slot.end
        pieces.append(self.text[pos : region.end - 1].replace("''", "'"))
        return [(region.start, region.end, _dq("".join(pieces)))]

    def _block(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        body = self.text[region.start : region.end]
        original = _block_value(region, body)
        if not isinstance(original, str) or not all(s.sentinel in original for s in slots):
            raise _Refused(slots[0], "the block scalar around it could not be read")
        expected = _Substituter(slots, self.pattern, {}).text(original)
        literal = region.indicators.startswith("|")
        inserted: list[str] = []
        ok = True
        for slot in slots:
            value = slot.value
            if any(c not in "\n\t" and (c in _LINE_BREAKS or _needs_escape(c)) for c in value) or (
                not literal and "\n" in value
            ):
                ok = False
                break
            inserted.append(value.replace("\n", "\n" + " " * region.content_indent))
        if ok:
            new_body = self._put(region.start, region.end, slots, inserted)
            if _block_value(region, new_body) == expected:
                return [(s.start, s.end, v) for s, v in zip(slots, inserted, strict=True)]
        # Fall back to one double-quoted scalar holding the exact value: the
        # indicator becomes the scalar, the content lines go.
        return [
            (region.header_start, region.header_end, _dq(expected)),
            (region.start, region.end, ""),
        ]

    def _comment(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        for slot in slots:
            if any(c in _LINE_BREAKS or _needs_escape(c) for c in slot.value):
                raise _Refused(
                    slot,
                    "it lands in a comment, where line breaks and control characters "
                    "are not allowed",
                )
        return [(s.start, s.end, s.value) for s in slots]

    def _other(self, region: _Region, slots: list[_Slot]) -> list[tuple[int, int, str]]:
        for slot in slots:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", slot.value):
                raise _Refused(
                    slot,
                    "it lands in an anchor, alias, tag or directive, which only take "
                    "letters, digits, '.', '_' and '-'",
                )
        return [(s.start, s.end, s.value) for s in slots]


def _apply_edits(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for start, end, replacement in sorted(edits):
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def render_yaml(content: str, variables: Mapping[str, str], *, name: str = "template") -> str:
    """Render YAML template ``content`` with ``variables``, escaping every value for its place.

    Pure: no I/O. Substitution follows :mod:`lk_core.templating` (``${VAR}``
    required, ``${VAR:-default}``, ``$${...}`` escapes, single pass); a value
    is placed so that the document keeps the template's structure and the
    value reads back exactly:

    * plain scalar: written as is when it stays the same string (or, where the
      variable's default is a number or boolean, a value of that same type);
      otherwise the whole scalar is written double-quoted;
    * double-quoted scalar: escaped (``\\"``, ``\\\\``, ``\\n``, ``\\xNN``...);
    * single-quoted scalar: ``'`` doubled; a value needing escapes turns the
      scalar into a double-quoted one;
    * block scalar (``|``, ``>``): lines indented to the block; if the block
      cannot hold the value exactly (chomping, folding, control characters),
      the block becomes a double-quoted scalar;
    * comment: any value without line breaks or control characters;
    * anchors, tags, directives: ``[A-Za-z0-9_.-]+`` only.

    Windows line endings in ``content`` become ``\\n``. Defaults are the
    template author's text and are inserted as written.

    Raises :class:`~lk_core.errors.MissingVariablesError` for missing required
    variables and :class:`TemplateError` (one line, naming the template
    ``name`` and the line and column) when the template is not valid YAML or
    a value cannot be placed exactly.
    """
    content = content.replace("\r\n", "\n")
    text, slots, segments, token = _prepare(content, variables)
    regions = _scan_regions(text)
    starts = [r.start for r in regions]
    grouped: dict[int, list[_Slot]] = {}
    loose: list[_Slot] = []
    for slot in slots:
        index = bisect.bisect_right(starts, slot.start) - 1
        if index >= 0 and regions[index].end >= slot.end and regions[index].kind != "other":
            grouped.setdefault(index, []).append(slot)
        else:
            loose.append(slot)
    if loose:
        # Anchors, aliases and tags must match each other: give every use of a
        # name there the same sentinel (same length, so offsets do not move).
        names = sorted({s.name for s in loose})
        renamed = {n: f"zlk{token}9{i:04d}z" for i, n in enumerate(names)}
        chars = list(text)
        for position, slot in enumerate(loose):
            loose[position] = attrs.evolve(slot, sentinel=renamed[slot.name])
            chars[slot.start : slot.end] = renamed[slot.name]
        text = "".join(chars)
        by_start = {s.start: s for s in loose}
        slots = [by_start.get(s.start, s) for s in slots]
    try:
        original = _load(text)
    except Exception as error:
        location = yaml_error_location(error)
        where = ""
        if location is not None:
            line, col = location
            line_start = 0
            for _ in range(line - 1):
                line_start = text.index("\n", line_start) + 1
            offset = _source_offset(segments, line_start + col - 1)
            src_line, src_col = _line_col(content, offset)
            where = f" at line {src_line}, column {src_col}"
        raise TemplateError(
            f"template {name!r} is not valid YAML{where}: {yaml_problem(error)}"
        ) from None
    if not slots:
        return text
    pattern = re.compile(f"zlk{token}[0-9]{{5}}z")
    renderer = _Renderer(text, slots, pattern)
    per_region: list[tuple[list[_Slot], list[tuple[int, int, str]]]] = []
    try:
        for index in sorted(grouped):
            region_slots = grouped[index]
            per_region.append((region_slots, renderer.edits(regions[index], region_slots)))
        if loose:  # not inside any scalar or comment: treat like an anchor or tag
            per_region.append((loose, renderer.edits(_Region("other", 0, 0), loose)))
    except _Refused as refused:
        _refuse(content, name, refused.slot, refused.reason)
    edits = [edit for _, region_edits in per_region for edit in region_edits]
    output = _apply_edits(text, edits)
    expected = _Substituter(slots, pattern, renderer.typed)(original)
    if _loads_as(output, expected):
        return output
    # Find the value that breaks the document, to say which one.
    for region_slots, region_edits in per_region:
        partial = _apply_edits(text, region_edits)
        partial_expected = _Substituter(region_slots, pattern, renderer.typed)(original)
        if not _loads_as(partial, partial_expected):
            _refuse(content, name, region_slots[0], "it cannot be placed there exactly")
    first = slots[0]
    _refuse(content, name, first, "the values together cannot be placed exactly")
    raise AssertionError("unreachable")  # pragma: no cover


def _loads_as(text: str, expected: Any) -> bool:
    try:
        return _same(_load(text), expected)
    except Exception:
        return False


def _refuse(content: str, name: str, slot: _Slot, reason: str) -> None:
    line, col = _line_col(content, slot.source_offset)
    raise TemplateError(
        f"template {name!r}: the value of {slot.name} cannot be used at line {line}, "
        f"column {col}: {reason}"
    )
