"""A retailer's network as files (docs/network-files.md): reading CSV and JSON rows into the
specifications of domain.configuration, with every refused row named by file and line, and
writing specifications back as rows. Pure: no database, no file system (callers hand in text).

One file per kind, applied in `KINDS` order. A CSV header names the spec's fields; a cell is
converted by the field's shape (lists `a|b`, maps `k=v|k=v`, transit bands `max_km:days|...`)
and pydantic does the rest, so a value is refused with the same rule wherever it comes from.
"""

import csv
import io
import json
import re
import types
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum, StrEnum
from typing import Any, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ValidationError

from domain.configuration import (
    CarrierServiceSpec,
    ChannelSpec,
    NodeSpec,
    SkuSpec,
    Spec,
    StockPositionSpec,
)


class Kind(StrEnum):
    CARRIERS = "carriers"
    NODES = "nodes"
    SKUS = "skus"
    CHANNELS = "channels"
    STOCK = "stock"


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


KINDS = tuple(Kind)  # the order files are applied in: a later kind may name an earlier one's ids
SPECS: dict[Kind, type[Spec]] = {
    Kind.CARRIERS: CarrierServiceSpec,
    Kind.NODES: NodeSpec,
    Kind.SKUS: SkuSpec,
    Kind.CHANNELS: ChannelSpec,
    Kind.STOCK: StockPositionSpec,
}
ID_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.CARRIERS: ("carrier", "service"),
    Kind.NODES: ("node_id",),
    Kind.SKUS: ("sku",),
    Kind.CHANNELS: ("channel",),
    Kind.STOCK: ("node_id", "sku"),
}
LIST_SEPARATOR = "|"


def key_of(kind: Kind, spec: Spec) -> tuple[str, ...]:
    return tuple(getattr(spec, name) for name in ID_FIELDS[kind])


def file_kind(name: str) -> tuple[Kind, FileFormat] | None:
    """`nodes.csv` -> (nodes, csv); None for any other name."""
    stem, _, extension = name.rpartition(".")
    if stem in Kind.__members__.values() and extension in FileFormat.__members__.values():
        return Kind(stem), FileFormat(extension)
    return None


# ---------------------------------------------------------------------------- cell shapes
class _Shape(StrEnum):
    SCALAR = "scalar"
    LIST = "list"
    MAP = "map"
    BANDS = "bands"  # a list of models: transit bands `max_km:days`


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _shape(annotation: Any) -> _Shape:
    annotation = _unwrap_optional(annotation)
    origin = get_origin(annotation)
    if origin is dict:
        return _Shape.MAP
    if origin is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return _Shape.BANDS
        return _Shape.LIST
    return _Shape.SCALAR


def _enums_in(annotation: Any) -> list[type[Enum]]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [annotation]
    return [e for arg in get_args(annotation) for e in _enums_in(arg)]


@dataclass(frozen=True)
class _Column:
    name: str
    shape: _Shape
    required: bool
    enum: type[Enum] | None  # the one enum the field's values are of, for readable refusals


def columns(spec: type[Spec]) -> list[_Column]:
    """The spec's fields in declaration order: the CSV header, as export writes it."""
    result = []
    for name, info in spec.model_fields.items():
        enums = _enums_in(info.annotation)
        result.append(
            _Column(name, _shape(info.annotation), info.is_required(), enums[0] if enums else None)
        )
    return result


# ---------------------------------------------------------------------------- refusals
class CellError(ValueError):
    """A cell that cannot even be split into the field's shape."""

    def __init__(self, column: str, message: str) -> None:
        self.column = column
        super().__init__(f"{column}: {message}")


def _words(enum: type[Enum]) -> str:
    """NodeType -> 'node type'."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", enum.__name__).lower()


_PATTERNS = {
    r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$": "an id: letters, digits and . _ : / -, "
    "starting with a letter or digit",
    r"^[A-Z]{2}$": "a two-letter country code such as FR",
    r"^https?://": "an http:// or https:// URL",
}


def _explain(error: Any, spec: type[Spec]) -> str:  # pydantic's ErrorDetails
    """One pydantic error as a short message a retailer can act on, prefixed by the field."""
    raw = list(error["loc"])
    if "[key]" in raw:  # a map's key is refused: the key is in the message, not the path
        raw = raw[: raw.index("[key]") - 1]
    loc = [part for part in raw if isinstance(part, str)]
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    message: str
    if kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "enum":
        info = spec.model_fields.get(loc[0]) if loc else None
        enums = _enums_in(info.annotation) if info else []
        if enums:
            choices = ", ".join(str(m.value) for m in enums[0])
            message = f"unknown {_words(enums[0])} {shown}; one of {choices}"
        else:
            message = f"unknown value {shown}; one of {ctx.get('expected')}"
    elif kind in ("int_parsing", "int_from_float", "int_type"):
        message = f"{shown} is not a whole number"
    elif kind in ("float_parsing", "float_type"):
        message = f"{shown} is not a number"
    elif kind in ("bool_parsing", "bool_type"):
        message = f"{shown} is not true or false (yes/no, 1/0 also do)"
    elif kind.startswith("date"):
        message = f"{shown} is not a date (YYYY-MM-DD)"
    elif kind == "greater_than_equal":
        message = f"must be at least {_number(ctx['ge'])}, not {value}"
    elif kind == "greater_than":
        message = f"must be more than {_number(ctx['gt'])}, not {value}"
    elif kind == "less_than_equal":
        message = f"must be at most {_number(ctx['le'])}, not {value}"
    elif kind == "less_than":
        message = f"must be less than {_number(ctx['lt'])}, not {value}"
    elif kind == "string_too_short":
        message = "may not be empty"
    elif kind == "string_too_long":
        message = f"at most {ctx['max_length']} characters"
    elif kind == "too_short":
        message = f"at least {ctx['min_length']} needed"
    elif kind == "string_pattern_mismatch":
        wanted = _PATTERNS.get(ctx.get("pattern", ""), f"the pattern {ctx.get('pattern')}")
        message = f"{shown} is not {wanted}"
    elif kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
    else:
        message = error["msg"]
    if kind == "value_error" and not loc:
        return message  # a rule across fields names its own field
    return f"{'.'.join(loc)}: {message}" if loc else message


# ---------------------------------------------------------------------------- reading rows
@dataclass(frozen=True, slots=True)
class Refusal:
    where: str  # `nodes.csv:17`, `nodes.json:[16]`, or the file alone
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(slots=True)
class Row:
    place: int  # CSV: the line the row starts on (header = 1); JSON: its index in the list
    spec: Spec | None  # None: refused (see the reader's refusals)
    named: str | None = None  # a refused row's id as given (first id field), if it has one


def where(name: str, fmt: FileFormat, place: int) -> str:
    return f"{name}:{place}" if fmt == FileFormat.CSV else f"{name}:[{place}]"


def _split_cell(column: _Column, cell: str) -> Any:
    if column.shape == _Shape.SCALAR:
        return cell
    parts = [p.strip() for p in cell.split(LIST_SEPARATOR) if p.strip()]
    if column.shape == _Shape.LIST:
        return parts
    if column.shape == _Shape.MAP:
        pairs = {}
        for part in parts:
            key, equals, value = part.partition("=")
            if not equals:
                raise CellError(column.name, f"'{part}' is not key=value")
            pairs[key.strip()] = value.strip()
        return pairs
    bands = []
    for part in parts:
        max_km, colon, days = part.partition(":")
        if not colon:
            raise CellError(column.name, f"'{part}' is not max_km:days")
        bands.append({"max_km": max_km.strip(), "days": days.strip()})
    return bands


class SpecReader:
    """Reads one file's rows as specs, collecting every refusal (`refused`) as it goes, so a
    file of millions of rows is never held as text or objects beyond what the caller keeps."""

    def __init__(
        self,
        name: str,
        kind: Kind,
        fmt: FileFormat,
        fast: Callable[[int, list[str]], bool] | None = None,
    ) -> None:
        """`fast(place, cells)`: a CSV row's line and cells (stripped, as many as the header's) before they are
        validated; True if it took the row as already valid (see parse_stock), and the row is
        then not yielded."""
        self.name, self.kind, self.fmt = name, kind, fmt
        self.spec = SPECS[kind]
        self.refused: list[Refusal] = []
        self.names: list[str] = []  # the CSV header's column names, once read
        self._fast = fast

    def refuse(self, place: int | None, message: str) -> None:
        at = self.name if place is None else where(self.name, self.fmt, place)
        self.refused.append(Refusal(at, message))

    def rows(self, text: Iterable[str]) -> Iterator[Row]:
        """`text`: the file's lines (an open text file, or `io.StringIO`), BOM already gone."""
        try:
            if self.fmt == FileFormat.CSV:
                yield from self._csv_rows(text)
            else:
                yield from self._json_rows("".join(text))
        except UnicodeDecodeError as exc:
            self.refuse(None, f"not UTF-8 text (byte {exc.object[exc.start]:#04x})")
        except csv.Error as exc:
            self.refuse(None, f"not readable as CSV: {exc}")

    def _validate(self, place: int, values: dict[str, Any], unsplit: set[str] = frozenset()) -> Row:
        """`unsplit`: fields whose cell was already refused (so not 'required' as well)."""
        named = values.get(ID_FIELDS[self.kind][0])
        named = named.strip() if isinstance(named, str) else None
        try:
            spec = self.spec.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                if not (error["loc"] and error["loc"][0] in unsplit):
                    self.refuse(place, _explain(error, self.spec))
            return Row(place, None, named)
        return Row(place, None, named) if unsplit else Row(place, spec)

    def _csv_rows(self, text: Iterable[str]) -> Iterator[Row]:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            self.refuse(None, "empty: a header line naming the columns is needed")
            return
        known = {c.name: c for c in columns(self.spec)}
        names = [cell.strip() for cell in header]
        problems = [
            f"unknown column '{n}'; the columns are {', '.join(known)}"
            for n in names
            if n not in known
        ]
        problems += [
            f"column '{n}' appears twice" for n in sorted(set(names)) if names.count(n) > 1
        ]
        problems += [
            f"missing column '{c.name}' (required)"
            for c in known.values()
            if c.required and c.name not in names
        ]
        if problems:
            for problem in problems:
                self.refuse(1, problem)
            return
        self.names = names
        cols = [known[n] for n in names]
        width = len(cols)
        scalars = all(c.shape == _Shape.SCALAR for c in cols)
        fast = self._fast
        last_line = reader.line_num
        for cells in reader:
            place, last_line = last_line + 1, reader.line_num
            if not cells:  # a blank line
                continue
            if len(cells) != width:
                self.refuse(place, f"{len(cells)} cells, the header has {width}")
                yield Row(place, None)
                continue
            cells = [cell.strip() for cell in cells]
            if fast is not None and fast(place, cells):
                continue
            if scalars:  # nothing to split: empty cells are the defaults
                yield self._validate(place, {n: c for n, c in zip(names, cells, strict=True) if c})
                continue
            values: dict[str, Any] = {}
            unsplit: set[str] = set()
            for column, cell in zip(cols, cells, strict=True):
                if not cell:
                    continue  # the field's default
                try:
                    values[column.name] = _split_cell(column, cell)
                except CellError as exc:
                    self.refuse(place, str(exc))
                    unsplit.add(column.name)
            yield self._validate(place, values, unsplit)

    def _json_rows(self, text: str) -> Iterator[Row]:
        decoder = json.JSONDecoder()
        position = _skip_space(text, 0)
        if not text.startswith("[", position):
            self.refuse(None, "a JSON list of objects is expected")
            return
        position = _skip_space(text, position + 1)
        index = 0
        if text.startswith("]", position):
            return self._json_end(text, position)
        while True:
            try:
                value, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                self.refuse(index, f"not valid JSON: {exc.msg} (line {exc.lineno})")
                return
            except RecursionError:
                self.refuse(index, "nested too deeply to be a row")
                return
            if isinstance(value, dict):
                yield self._validate(index, value)
            else:
                self.refuse(index, "an object is expected")
                yield Row(index, None)
            index += 1
            position = _skip_space(text, position)
            if text.startswith(",", position):
                position = _skip_space(text, position + 1)
                continue
            if text.startswith("]", position):
                return self._json_end(text, position)
            self.refuse(index, "',' or ']' expected after the object before")
            return

    def _json_end(self, text: str, position: int) -> None:
        if _skip_space(text, position + 1) != len(text):
            self.refuse(None, "text after the closing ']'")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


# ---------------------------------------------------------------------------- whole files
@dataclass
class ParsedFile:
    """A configuration file's good specs, in file order, and every refusal."""

    name: str
    kind: Kind
    fmt: FileFormat
    specs: list[Spec] = field(default_factory=list)
    places: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    # The ids refused rows were given under: a later file naming one is not refused for it
    # as well (the row's own refusal says what to fix).
    refused_ids: set[str] = field(default_factory=set)

    def ids(self) -> set[str]:
        """The single-field ids (node ids, SKUs, channels) the file defines or tried to."""
        return {key_of(self.kind, s)[0] for s in self.specs} | self.refused_ids


def _again(fmt: FileFormat, first: int) -> str:
    return f"also on line {first}" if fmt == FileFormat.CSV else f"also at [{first}]"


def _id_label(kind: Kind, key: tuple[str, ...]) -> str:
    names = ", ".join(ID_FIELDS[kind])
    return f"{names}: '{'|'.join(key)}'"


def parse_file(name: str, text: Iterable[str]) -> ParsedFile:
    """Any kind but stock (see parse_stock): every spec kept, duplicates refused naming both."""
    kind, fmt = _kind_or_fail(name)
    reader = SpecReader(name, kind, fmt)
    parsed = ParsedFile(name, kind, fmt)
    first: dict[tuple[str, ...], int] = {}
    for row in reader.rows(text):
        if row.spec is None:
            if row.named:
                parsed.refused_ids.add(row.named)
            continue
        key = key_of(kind, row.spec)
        if key in first:
            reader.refuse(row.place, f"{_id_label(kind, key)} is {_again(fmt, first[key])}")
            continue
        first[key] = row.place
        parsed.specs.append(row.spec)
        parsed.places.append(row.place)
    parsed.refused = reader.refused
    return parsed


def _kind_or_fail(name: str) -> tuple[Kind, FileFormat]:
    found = file_kind(name)
    if found is None:
        raise ValueError(f"not a network file name: {name}")
    return found


NO_OVERRIDE = -1  # StockRows.override where the position has none


@dataclass
class StockRows:
    """The good rows of a stock file, as columns: millions of positions fit in ~30 bytes each.
    Node ids and SKUs are numbered in first-seen order (`node_ids`, `skus`)."""

    name: str
    fmt: FileFormat
    node_ids: list[str]
    skus: list[str]
    node: np.ndarray  # int64 index into node_ids
    sku: np.ndarray  # int64 index into skus
    on_hand: np.ndarray  # int64
    override: np.ndarray  # int64 safety override, NO_OVERRIDE for none
    place: np.ndarray  # int64 line (CSV) or index (JSON)
    refused: list[Refusal] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.node)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where `mask` is False (refused later, e.g. an unknown node)."""
        for name in ("node", "sku", "on_hand", "override", "place"):
            setattr(self, name, getattr(self, name)[mask])


def parse_stock(name: str, text: Iterable[str]) -> StockRows:
    """A stock file's rows as columns. Millions of rows: a CSV row whose node and SKU were
    already accepted on an earlier row and whose counts are plain digits is taken without
    pydantic (it would accept it unchanged); any other row is validated as a spec."""
    kind, fmt = _kind_or_fail(name)
    if kind != Kind.STOCK:
        raise ValueError(f"not a stock file: {name}")
    node_numbers: dict[str, int] = {}
    sku_numbers: dict[str, int] = {}
    columns_ = [array("q") for _ in range(5)]
    nodes, skus, on_hand, override, places = columns_
    positions: list[int] = []  # node_id, sku, on_hand, safety_override cell indices

    def plain(place: int, cells: list[str]) -> bool:
        if not positions:
            names = reader.names
            positions.extend(names.index(f) if f in names else -1 for f in _STOCK_FIELDS)
        i_node, i_sku, i_on_hand, i_override = positions
        n = node_numbers.get(cells[i_node])
        s = sku_numbers.get(cells[i_sku])
        units = cells[i_on_hand]
        safety = cells[i_override] if i_override >= 0 else ""
        if (
            n is None
            or s is None
            or not (units.isascii() and units.isdigit() and len(units) < _MAX_DIGITS)
            or (
                safety and not (safety.isascii() and safety.isdigit() and len(safety) < _MAX_DIGITS)
            )
        ):
            return False
        nodes.append(n)
        skus.append(s)
        on_hand.append(int(units))
        override.append(int(safety) if safety else NO_OVERRIDE)
        places.append(place)
        return True

    reader = SpecReader(name, kind, fmt, fast=plain)
    for row in reader.rows(text):
        spec = row.spec
        if spec is None:
            continue
        assert isinstance(spec, StockPositionSpec)
        too_large = [
            f for f in ("on_hand", "safety_override") if (getattr(spec, f) or 0) >= 10**_MAX_DIGITS
        ]
        if too_large:
            reader.refuse(row.place, f"{too_large[0]}: more than {_MAX_DIGITS - 1} digits")
            continue
        n = node_numbers.setdefault(spec.node_id, len(node_numbers))
        s = sku_numbers.setdefault(spec.sku, len(sku_numbers))
        nodes.append(n)
        skus.append(s)
        on_hand.append(spec.on_hand)
        override.append(NO_OVERRIDE if spec.safety_override is None else spec.safety_override)
        places.append(row.place)
    arrays = [
        np.frombuffer(c, dtype=np.int64) if len(c) else np.zeros(0, np.int64) for c in columns_
    ]
    rows = StockRows(name, fmt, list(node_numbers), list(sku_numbers), *arrays)
    rows.refused = reader.refused
    _refuse_repeated_positions(rows)
    return rows


_STOCK_FIELDS = ("node_id", "sku", "on_hand", "safety_override")
_MAX_DIGITS = 18  # counts fit the ledger's 64-bit integers


def _refuse_repeated_positions(rows: StockRows) -> None:
    if len(rows) < 2:
        return
    keys = rows.node * max(len(rows.skus), 1) + rows.sku
    order = np.argsort(keys, kind="stable")  # stable: the first of equal keys comes first
    ordered = keys[order]
    repeat = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
    if not repeat.size:
        return
    drop = np.ones(len(rows), dtype=bool)
    first_of = {}
    for i in repeat.tolist():
        key = int(ordered[i])
        first = first_of.setdefault(key, int(order[i - 1]))
        later = int(order[i])
        drop[later] = False
        node, sku = rows.node_ids[rows.node[later]], rows.skus[rows.sku[later]]
        rows.refused.append(
            Refusal(
                where(rows.name, rows.fmt, int(rows.place[later])),
                f"{_id_label(Kind.STOCK, (node, sku))} is "
                f"{_again(rows.fmt, int(rows.place[first]))}",
            )
        )
    rows.refused.sort(key=lambda r: _place_order(r.where))
    rows.keep(drop)


def _place_order(at: str) -> int:
    found = re.search(r"(\d+)\]?$", at)
    return int(found.group(1)) if found else -1


# ---------------------------------------------------------------------------- writing rows
def _number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _cell(column: _Column, value: Any) -> str:
    if value is None or column.shape == _Shape.SCALAR:
        return _scalar(value)
    if column.shape == _Shape.LIST:
        return LIST_SEPARATOR.join(_scalar(v) for v in value)
    if column.shape == _Shape.MAP:
        pairs = sorted((_scalar(k), _scalar(v)) for k, v in value.items())
        return LIST_SEPARATOR.join(f"{k}={v}" for k, v in pairs)
    return LIST_SEPARATOR.join(f"{_number(b.max_km)}:{b.days}" for b in value)


def csv_header(kind: Kind) -> list[str]:
    return [c.name for c in columns(SPECS[kind])]


def csv_cells(kind: Kind) -> Callable[[Spec], list[str]]:
    """A function writing one spec of `kind` as its CSV cells, in `csv_header` order."""
    cols = columns(SPECS[kind])

    def cells(spec: Spec) -> list[str]:
        return [_cell(c, getattr(spec, c.name)) for c in cols]

    return cells


def write_csv(kind: Kind, specs: Iterable[Spec], out: io.TextIOBase) -> None:
    """Header, then one line per spec; `\\n` line ends, quoting only where a cell needs it."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_header(kind))
    cells = csv_cells(kind)
    writer.writerows(cells(spec) for spec in specs)


def write_json(specs: Iterable[Spec], out: io.TextIOBase) -> None:
    """A list with one object per line, every field present (the spec's own shapes)."""
    out.write("[")
    separator = "\n"
    for spec in specs:
        out.write(separator + json.dumps(spec.model_dump(mode="json"), ensure_ascii=False))
        separator = ",\n"
    out.write("\n]\n")


def write_rows(kind: Kind, fmt: FileFormat, specs: Iterable[Spec], out: io.TextIOBase) -> None:
    if fmt == FileFormat.CSV:
        write_csv(kind, specs, out)
    else:
        write_json(specs, out)


def stock_specs(
    rows: Iterable[tuple[str, str, int, int | None]],
) -> Iterator[StockPositionSpec]:
    """(node_id, sku, on_hand, safety_override) rows as specs, for export, without validation
    (they come from the ledger)."""
    for node_id, sku, on_hand, override in rows:
        yield StockPositionSpec.model_construct(
            node_id=node_id, sku=sku, on_hand=on_hand, safety_override=override
        )


def sorted_specs(kind: Kind, specs: Sequence[Spec]) -> list[Spec]:
    return sorted(specs, key=lambda s: key_of(kind, s))
