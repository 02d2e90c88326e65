"""Asterisk `.conf` files through pyst2's `asterisk.config`, made to survive real ones.

pyst2's parser is used as is (`Config.parse`, its `Category` and `Item`), but fed
sanitized lines, because on its own it:
- stops at the first bad line (`ParseError`), losing everything after it;
- rejects template headers (`[sales](queue-template)`, `[tpl](!)`);
- drops settings that come before any `[section]` without a word;
- treats `#include` as a bad setting, and knows neither `\\;` nor `;-- --;` comments;
- opens the file in the locale's encoding and never closes it.
`AsteriskConf.load` reads the file as UTF-8, blanks each bad line (keeping line
numbers) and records it in `problems`; template options are kept in `headers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asterisk.config import Config, Item, ParseError

#: Stands in for an escaped `\;` while pyst2 splits comments off at `;`.
SEMI = "\ue000"
_HEADER = re.compile(r"^\[([^\[\]]+)\]\s*(?:\(([^()]*)\))?$")
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})


@dataclass(frozen=True)
class Header:
    """A section header's template options: `[name](!)`, `[name](tpl1,tpl2)`, `[name](+)`."""

    name: str
    line: int
    template: bool = False  # `!`: a template, not a real section
    append: bool = False  # `+`: adds to an earlier section of the same name
    parents: tuple[str, ...] = ()  # templates whose settings come first


@dataclass(frozen=True)
class Problem:
    """A line that could not be used, and why."""

    line: int
    message: str


def unescape(value: str) -> str:
    """A value as Asterisk sees it: `\\;` back to `;`, surrounding blanks stripped."""
    return value.replace(SEMI, ";").strip()


def split_args(value: str) -> list[str]:
    """Split at commas as Asterisk does: `"..."` quotes a comma, `\\` escapes a character."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if quoted:
        raise ValueError(f"unbalanced quote in {value!r}")
    out.append("".join(cur).strip())
    return out


def parse_bool(text: str, what: str) -> bool | None:
    """Asterisk's yes/no (`ast_true`/`ast_false`); None for empty, ValueError otherwise."""
    if not text:
        return None
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"{what} is not yes/no: {text!r}")


def _code(line: str) -> str:
    """The line without its comment, with `\\;` protected."""
    return line.replace("\\;", SEMI).split(";", 1)[0].strip()


class AsteriskConf(Config):  # type: ignore[misc]
    """pyst2's `Config` with a forgiving `load`; read `categories`, `headers`, `problems`."""

    def __init__(self, filename: str) -> None:
        self.headers: dict[int, Header] = {}
        self.problems: list[Problem] = []
        self.invalid_sections: set[int] = set()
        super().__init__(filename)

    def load(self) -> None:
        with open(self.filename, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        self.raw_lines = [self._sanitize(n, line) for n, line in self._uncommented(lines)]

    @staticmethod
    def _uncommented(lines: list[str]) -> list[tuple[int, str]]:
        """Lines with `;-- ... --;` block comments blanked, numbered from 1."""
        out: list[tuple[int, str]] = []
        in_block = False
        for n, line in enumerate(lines, 1):
            text = ""
            while line:
                if in_block:
                    end = line.find("--;")
                    if end < 0:
                        line = ""
                    else:
                        line, in_block = line[end + 3 :], False
                else:
                    start = line.find(";--")
                    if start < 0:
                        text, line = text + line, ""
                    else:
                        text, line, in_block = text + line[:start], line[start + 3 :], True
            out.append((n, text))
        return out

    def _sanitize(self, n: int, line: str) -> str:
        code = _code(line)
        if not code:
            return ""
        if code.startswith("#"):
            self.problems.append(Problem(n, f"directive not followed: {code}"))
            return ""
        if code.startswith("["):
            return self._header(n, code)
        if not self.headers and not self.invalid_sections:
            self.problems.append(Problem(n, f"setting outside any [section]: {code}"))
            return ""
        try:
            Item(code, n)
        except ParseError as exc:
            self.problems.append(Problem(n, f"{exc.args[-1]}: {code}"))
            return ""
        return line.replace("\\;", SEMI)

    def _header(self, n: int, code: str) -> str:
        match = _HEADER.match(code)
        if match is None:
            self.problems.append(Problem(n, f"bad section header: {code}"))
            self.invalid_sections.add(n)
            return "[?]"  # items that follow belong to no usable section
        name, options = match.group(1).strip(), match.group(2) or ""
        opts = [o.strip() for o in options.split(",") if o.strip()]
        parents = tuple(o for o in opts if o not in ("!", "+"))
        self.headers[n] = Header(name, n, "!" in opts, "+" in opts, parents)
        return f"[{name}]"  # what pyst2's Category accepts
