"""Line and column of each key and array item of a JSON text, so a finding can point at the
place in the editor (json.loads gives positions only for syntax errors)."""

from __future__ import annotations

from json import decoder as _json_decoder

Path = tuple[str | int, ...]


def scanstring(text: str, end: int) -> tuple[str, int]:
    """json's own string scanner: the string starting after the quote at `end - 1`."""
    value, after = _json_decoder.scanstring(text, end)  # type: ignore[attr-defined]
    return str(value), int(after)


def line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def key_offsets(text: str) -> dict[Path, int]:
    """Offset of each object key (by path) and of each array item in valid JSON `text`."""
    offsets: dict[Path, int] = {}
    ws = " \t\n\r"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    def value(i: int, path: Path) -> int:
        i = skip(i)
        offsets.setdefault(path, i)
        if text[i] == "{":
            i = skip(i + 1)
            while text[i] != "}":
                key, end = scanstring(text, i + 1)
                offsets[(*path, key)] = i
                i = value(skip(end) + 1, (*path, key))
                i = skip(i)
                i = skip(i + 1) if text[i] == "," else i
            return i + 1
        if text[i] == "[":
            i = skip(i + 1)
            index = 0
            while text[i] != "]":
                i = skip(value(i, (*path, index)))
                i = skip(i + 1) if text[i] == "," else i
                index += 1
            return i + 1
        if text[i] == '"':
            return scanstring(text, i + 1)[1]
        while i < len(text) and text[i] not in ",]}" + ws:
            i += 1
        return i

    value(0, ())
    return offsets


class Locator:
    """Maps a path in the document to (line, column) in `text`; the nearest parent when the
    exact path has no position (a missing key is reported at its statement)."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.offsets = key_offsets(text)
        except (IndexError, ValueError):  # cannot happen for text json.loads accepted
            self.offsets = {}

    def at(self, path: Path) -> tuple[int, int]:
        while path and path not in self.offsets:
            path = path[:-1]
        return line_col(self.text, self.offsets.get(path, 0))
