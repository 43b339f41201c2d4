"""Readers that turn a file (or a request body) into canonical raw rows with their line numbers.

A source yields `SourceRow`s: the physical line the row starts on (the header is line 1), the
row as canonical raw values (`customer_id`, `placed_at`…, still text), and a prefix for field
names (`orders[3].` for the fourth item of a JSON array). A source also names fields the way its
file does (`field_label`), so an error about `placed_at` in a WooCommerce file says
`date_created_gmt`.

CSV is streamed: one row in memory at a time, from a binary handle wrapped for UTF-8 (a BOM is
skipped), so the position in bytes can drive a progress bar. JSON is read whole as text (the
standard library has no streaming parser and we add no dependency) but decoded one item at a
time, which keeps the decoded objects small and tells each item's line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vafa.customers.validation import COLUMNS, REQUIRED, Problem

# Fields big enough for a JSON `properties` cell or a long note, well short of a runaway file.
csv.field_size_limit(10 * 1024 * 1024)


@dataclass(slots=True)
class SourceRow:
    """One row of input: where it is, its canonical raw values, or what made it unreadable."""

    line: int
    data: Mapping[str, Any] | None
    prefix: str = ""
    problems: Sequence[Problem] = ()


class Source:
    """Base of every reader: a name for messages, rows, field labels and progress."""

    name: str = "input"
    notes: list[str]

    def __init__(self) -> None:
        self.notes = []

    def rows(self) -> Iterator[SourceRow]:
        raise NotImplementedError

    def field_label(self, name: str) -> str:
        """How this source names a canonical field (for error messages)."""
        return name

    def position(self) -> tuple[int, int]:
        """(done, total) in bytes or items, for a progress bar."""
        return (0, 0)


def _first_bad_utf8_line(path: Path, reason: str) -> tuple[int, str]:
    """The line of the first byte that is not UTF-8 (the decoder reads ahead in blocks, so the
    error it raises does not say); only called once a file has failed to decode."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.reason
    return 0, reason


def canonical_header(name: str) -> str:
    """`Customer ID`, `customer-id`, `customer_id ` all name the column `customer_id`;
    `properties(JSON)` (the notation in the docs) names `properties`."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return key.removesuffix("(json)")


def _sniff_delimiter(first_line: str) -> str:
    """Comma unless the header clearly uses `;` or tab (spreadsheets in some locales do)."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


class CsvSource(Source):
    """A CSV file, streamed row by row.

    `columns` maps the file's header names (after `canonical_header`) to canonical fields; by
    default the entity's canonical columns map to themselves. Unknown columns are kept in the
    customer's `attributes` (customers) or ignored with a note (other entities). `clean` is
    applied to every cell (e.g. Shopify's leading apostrophe).
    """

    def __init__(
        self,
        path: Path,
        entity: str,
        *,
        columns: Mapping[str, str] | None = None,
        clean: Callable[[str], str] | None = None,
        attribute_columns: Mapping[str, str] | None = None,
        ignore_columns: Collection[str] = (),
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        self.entity = entity
        self.columns = dict(columns) if columns is not None else {
            c: c for c in COLUMNS[entity]
        }
        self.attribute_columns = dict(attribute_columns or {})
        self.clean = clean
        self.ignore_columns = frozenset(ignore_columns)
        self.transform = transform
        self._labels = {canonical: header for header, canonical in self.columns.items()}
        self._labels.update(labels or {})
        self._raw: BinaryIO | None = None
        self._size = self.path.stat().st_size

    def field_label(self, name: str) -> str:
        return self._labels.get(name, name)

    def position(self) -> tuple[int, int]:
        if self._raw is None or self._raw.closed:
            return (self._size, self._size)
        return (self._raw.tell(), self._size)

    def rows(self) -> Iterator[SourceRow]:
        with self.path.open("rb") as raw:
            self._raw = raw
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            try:
                yield from self._rows(text)
            except UnicodeDecodeError as exc:
                line, reason = _first_bad_utf8_line(self.path, exc.reason)
                yield SourceRow(line, None, problems=[("file", f"not UTF-8 text ({reason})")])
            except csv.Error as exc:
                yield SourceRow(0, None, problems=[("file", f"not readable as CSV: {exc}")])
            finally:
                text.detach()

    def _rows(self, text: io.TextIOWrapper) -> Iterator[SourceRow]:
        first = text.readline()
        if not first.strip():
            yield SourceRow(1, None, problems=[("header", "the file is empty")])
            return
        text.seek(0)
        reader = csv.reader(text, delimiter=_sniff_delimiter(first))
        header = [canonical_header(h) for h in next(reader)]
        problems: list[Problem] = []
        seen: set[str] = set()
        for name in header:
            if name in seen and name:
                problems.append((name, "column appears twice in the header"))
            seen.add(name)
        mapped = [self.columns.get(h) for h in header]
        attribute_keys = [self.attribute_columns.get(h) for h in header]
        for required in REQUIRED[self.entity]:
            if required not in mapped:
                problems.append((self.field_label(required), "required column missing"))
        unknown = [h for h, m, a in zip(header, mapped, attribute_keys, strict=True)
                   if m is None and a is None and h and h not in self.ignore_columns]
        if unknown and self.entity == "customers":
            for index, h in enumerate(header):
                if h in unknown:
                    attribute_keys[index] = h
            self.notes.append(f"extra columns kept in customer attributes: {', '.join(unknown)}")
        elif unknown:
            self.notes.append(f"ignored unknown columns: {', '.join(unknown)}")
        if problems:
            yield SourceRow(1, None, problems=problems)
            return
        width = len(header)
        pairs = [(i, m) for i, m in enumerate(mapped) if m is not None]
        attributes = [(i, a) for i, a in enumerate(attribute_keys) if a is not None]
        clean = self.clean
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if not row:
                continue  # a blank line
            if len(row) != width:
                yield SourceRow(line, None, problems=[
                    ("row", f"expected {width} fields like the header, found {len(row)}")
                ])
                continue
            if clean is not None:
                row = [clean(v) for v in row]
            data: dict[str, Any] = {m: row[i] for i, m in pairs}
            if attributes:
                extra = {a: row[i] for i, a in attributes if row[i] != ""}
                if extra:
                    data["attributes"] = extra
            if self.transform is not None:
                data = self.transform(data)
            yield SourceRow(line, data)


class JsonSource(Source):
    """A JSON export: an array of items, or an object holding one (`{"orders": [...]}`), or one
    item (`{"order": {...}}` or the bare object). Each item goes through `mapper`, which turns
    the platform's shape into canonical raw values."""

    def __init__(
        self,
        path: Path | None,
        entity: str,
        *,
        mapper: Callable[[Mapping[str, Any]], dict[str, Any]],
        keys: Sequence[str] = (),
        labels: Callable[[str], str] | None = None,
        text: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.name = name or (path.name if path else "body")
        self.entity = entity
        self.mapper = mapper
        self.keys = tuple(keys)
        self._labels = labels
        self._text = text
        self._pos = 0
        self._total = 0

    def field_label(self, name: str) -> str:
        return self._labels(name) if self._labels else name

    def position(self) -> tuple[int, int]:
        return (self._pos, self._total)

    def rows(self) -> Iterator[SourceRow]:
        if self._text is None:
            assert self.path is not None
            try:
                self._text = self.path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as exc:
                line, reason = _first_bad_utf8_line(self.path, exc.reason)
                yield SourceRow(line, None, problems=[("file", f"not UTF-8 text ({reason})")])
                return
        self._total = len(self._text)
        try:
            for line, prefix, item, end in iter_json_items(self._text, self.keys):
                self._pos = end
                if not isinstance(item, Mapping):
                    yield SourceRow(line, None, prefix, [("item", "expected a JSON object")])
                    continue
                try:
                    data = self.mapper(item)
                except MappingError as exc:
                    yield SourceRow(line, None, prefix, [(exc.field, exc.reason)])
                    continue
                yield SourceRow(line, data, prefix)
        except json.JSONDecodeError as exc:
            yield SourceRow(exc.lineno, None, problems=[("json", f"invalid JSON: {exc.msg}")])
        self._pos = self._total


class RecordsSource(Source):
    """Canonical raw rows already in memory (an API request body): a list gets `[i].` prefixes
    on field names, a single object none."""

    def __init__(self, items: Sequence[Mapping[str, Any]], *, batch: bool, name: str = "request"):
        super().__init__()
        self.items = items
        self.batch = batch
        self.name = name

    def rows(self) -> Iterator[SourceRow]:
        for index, item in enumerate(self.items):
            yield SourceRow(index + 1, item, f"[{index}]." if self.batch else "")


_INDEX = re.compile(r"\[(\d+)\]")


def path_labels(mapping: Mapping[str, str]) -> Callable[[str], str]:
    """Field labels from canonical paths to a platform's paths, list indices kept:
    with `{"lines[].unit_price": "line_items[].price"}`, `lines[2].unit_price` is labelled
    `line_items[2].price`. Unlisted fields keep their canonical name."""

    def label(name: str) -> str:
        indices = _INDEX.findall(name)
        target = mapping.get(_INDEX.sub("[]", name))
        if target is None:
            return name
        for index in indices:
            target = target.replace("[]", f"[{index}]", 1)
        return target

    return label


class MappingError(ValueError):
    """A platform item whose shape cannot be mapped (a field of the wrong JSON type)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class _Cursor:
    text: str
    pos: int = 0
    line: int = 1
    counted_to: int = 0
    decoder: json.JSONDecoder = field(default_factory=json.JSONDecoder)

    def skip(self) -> str:
        """Skip whitespace; return the next character ('' at the end)."""
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        self.pos = pos
        return text[pos] if pos < len(text) else ""

    def line_here(self) -> int:
        self.line += self.text.count("\n", self.counted_to, self.pos)
        self.counted_to = self.pos
        return self.line

    def value(self) -> Any:
        value, self.pos = self.decoder.raw_decode(self.text, self.pos)
        return value

    def expect(self, char: str) -> None:
        if self.skip() != char:
            raise json.JSONDecodeError(f"expected {char!r}", self.text, self.pos)
        self.pos += 1


def payload_object(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The nested object at `key` of a platform payload ({} when absent)."""
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(key, "expected an object")
    return value


def payload_list(item: Mapping[str, Any], key: str) -> list[Any]:
    """The list at `key` of a platform payload ([] when absent)."""
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(key, "expected a list")
    return value


def iter_json_items(text: str, keys: Sequence[str]) -> Iterator[tuple[int, str, Any, int]]:
    """Yield `(line, prefix, item, end)` for each item of a JSON export.

    `keys` name the containers to look in, plural for a list (`orders`) and singular for one
    item (`order`). A top-level array is iterated directly; an object without any of the keys
    is itself the one item.
    """
    cursor = _Cursor(text)
    first = cursor.skip()
    if first == "[":
        yield from _iter_array(cursor, "")
        return
    if first != "{":
        raise json.JSONDecodeError("expected a JSON array or object", text, cursor.pos)
    start_pos, start_line = cursor.pos, cursor.line_here()
    cursor.pos += 1
    found = False
    while True:
        char = cursor.skip()
        if char == "}":
            cursor.pos += 1
            break
        key = cursor.value()
        cursor.expect(":")
        char = cursor.skip()
        if key in keys and char == "[":
            found = True
            yield from _iter_array(cursor, f"{key}")
        elif key in keys and char == "{":
            found = True
            line = cursor.line_here()
            item = cursor.value()
            yield line, f"{key}.", item, cursor.pos
        else:
            cursor.value()
        if cursor.skip() == ",":
            cursor.pos += 1
    if cursor.skip():
        raise json.JSONDecodeError("extra data after the JSON value", text, cursor.pos)
    if not found:
        cursor.pos = start_pos
        yield start_line, "", cursor.value(), cursor.pos


def _iter_array(cursor: _Cursor, name: str) -> Iterator[tuple[int, str, Any, int]]:
    cursor.pos += 1  # past "["
    index = 0
    while True:
        char = cursor.skip()
        if char == "]":
            cursor.pos += 1
            return
        if not char:
            raise json.JSONDecodeError("unterminated array", cursor.text, cursor.pos)
        line = cursor.line_here()
        item = cursor.value()
        yield line, f"{name}[{index}].", item, cursor.pos
        index += 1
        char = cursor.skip()
        if char == ",":
            cursor.pos += 1
        elif char != "]":
            raise json.JSONDecodeError("expected ',' or ']'", cursor.text, cursor.pos)
