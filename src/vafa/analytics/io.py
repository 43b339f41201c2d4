"""Reading transactions tables into the one shape every analytics function expects.

A *transactions table* is one row per order (or purchase line) with at least a customer, a moment
and a monetary value. Shops export them in many shapes, so `read_transactions` maps any of them onto
the canonical order columns of ARCHITECTURE.md (``order_id, customer_id, placed_at, status, total,
currency`` + optional ``discount``) and returns a normalised pandas frame:

=============  ======================  =====================================================
column         dtype                   meaning
=============  ======================  =====================================================
customer_id    str                     the shop's customer id, whitespace stripped
placed_at      datetime64[us, UTC]     when the order was placed, an aware UTC instant
amount         float64                 the order's value (canonical ``total``), never negative
order_id       str (optional)          kept when the source has it
status         str (optional)          lower-cased; see *statuses* below
discount       float64 (optional)      money taken off the order (discount, points); 0 if blank
=============  ======================  =====================================================

Statuses: rows whose status is ``refunded``, ``cancelled`` (or ``canceled``) are not purchases and are
dropped by default (`DEFAULT_EXCLUDED_STATUSES`; pass ``exclude_statuses=()`` to keep them). The
number dropped is left in ``frame.attrs["excluded_by_status"]``. A file holding several currencies is
refused: sums across currencies mean nothing. The single currency, when present, is left in
``frame.attrs["currency"]``.

Timestamps without a UTC offset are read as wall-clock time in ``tz`` (the shop's zone, default
UTC); timestamps with an offset are converted. Persian and Arabic-Indic digits are accepted.

CSV files are read by Arrow's multi-threaded reader and converted column by column with Arrow
compute, so ten million rows take seconds; only when a fast conversion fails does a slower,
per-value pass run, to say which line and value are wrong. Line numbers count the header as line 1
and assume one record per line (a quoted value spanning lines shifts them).
"""

from __future__ import annotations

import csv
import datetime
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vafa.analytics.errors import InputError, InputFieldError

__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_EXCLUDED_STATUSES",
    "day_number",
    "day_numbers",
    "day_to_timestamp",
    "ensure_transactions",
    "read_transactions",
]

#: Statuses whose rows are not purchases (compared lower-cased).
DEFAULT_EXCLUDED_STATUSES: frozenset[str] = frozenset({"refunded", "cancelled", "canceled"})

#: Canonical input columns a ``mapping`` may name, and whether each is required.
CANONICAL_COLUMNS: dict[str, bool] = {
    "customer_id": True,
    "placed_at": True,
    "total": True,
    "order_id": False,
    "status": False,
    "discount": False,
    "currency": False,
}

# "amount" is what the normalised frame calls "total"; accepting it makes reading idempotent.
_ALIASES = {"amount": "total"}

_CDNOW_COLUMNS = ["customer_id", "date", "number_of_cds", "dollar_value"]

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩٫", "01234567890123456789.")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,٬]\d{3})+(\.\d+)?$")
# an offset follows a time of day; a bare date such as 2024-01-05 ends in "-05" but has none
_HAS_OFFSET = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"

Source: TypeAlias = pd.DataFrame | pa.Table | str | os.PathLike[str]
# a column as Arrow hands it over: one array, or the chunks a multi-threaded reader produced
Column: TypeAlias = pa.Array | pa.ChunkedArray


class _Located:
    """Turns a row position into the place a person would look for it (a file line or a row)."""

    def __init__(self, source: str, first_line: int | None) -> None:
        self.source = source
        self.first_line = first_line

    def error(self, position: int, field: str, reason: str) -> InputFieldError:
        if self.first_line is None:
            return InputFieldError(self.source, f"row {position}", field, reason)
        return InputFieldError(self.source, str(self.first_line + position), field, reason)


def read_transactions(
    source: Source,
    *,
    mapping: Mapping[str, str] | None = None,
    format: Literal["canonical", "cdnow"] | None = None,
    tz: str = "UTC",
    date_format: str | None = None,
    delimiter: str = ",",
    exclude_statuses: Collection[str] = DEFAULT_EXCLUDED_STATUSES,
) -> pd.DataFrame:
    """Read a transactions table from a frame, an Arrow table or a file, and normalise it.

    Args:
        source: a pandas DataFrame, a pyarrow Table, or a path to a CSV file (optionally ``.gz``),
            a Parquet file (``.parquet``) or, with ``format="cdnow"``, CDNOW_master.txt.
        mapping: ``{canonical: theirs}`` column names, e.g. ``{"placed_at": "Order Date",
            "total": "Sales"}``; unmapped canonical columns are looked up under their own name.
        format: ``"cdnow"`` for the whitespace-separated CDNOW file (``customer_id date(YYYYMMDD)
            number_of_cds dollar_value``); ``None``/``"canonical"`` for everything else.
        tz: zone in which timestamps without an offset are read (the shop's zone).
        date_format: a strptime format for ``placed_at`` when it is not ISO 8601 (e.g. ``%d/%m/%Y``).
        delimiter: the CSV field separator.
        exclude_statuses: statuses (case-insensitive) whose rows are dropped; ``()`` keeps all.

    Returns:
        The normalised frame described in the module docstring.

    Raises:
        InputError: the source is unusable (missing file or column, mixed currencies, no rows).
        InputFieldError: a value cannot be read; the message names file, line, field and value.
    """
    if format == "cdnow":
        if not isinstance(source, str | os.PathLike):
            raise InputError("format='cdnow' reads a file path")
        return _finish(_read_cdnow(Path(source)), exclude_statuses)
    if format not in (None, "canonical"):
        raise InputError(f"unknown format {format!r}; expected 'canonical' or 'cdnow'")
    columns = _resolve_mapping(mapping)
    if isinstance(source, pd.DataFrame):
        table = _frame_to_arrow(source)
        located = _Located("", None)
    elif isinstance(source, pa.Table):
        table = source
        located = _Located("", None)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        table, located = _read_file(path, columns, delimiter)
    else:
        raise InputError(
            f"cannot read transactions from {type(source).__name__}; "
            "pass a DataFrame, a pyarrow Table or a file path"
        )
    picked = _pick_columns(table, columns, located.source)
    return _finish(_normalise(picked, located, tz, date_format), exclude_statuses)


def ensure_transactions(
    data: pd.DataFrame | pa.Table,
    *,
    exclude_statuses: Collection[str] = DEFAULT_EXCLUDED_STATUSES,
) -> pd.DataFrame:
    """Return ``data`` as a normalised transactions frame, cheaply when it already is one.

    Every analytics function calls this first, so each accepts either the output of
    `read_transactions` or any frame with canonical columns (which is then read in full). Rows with
    an excluded status are dropped here too, so no function counts a refund as a purchase.
    """
    if isinstance(data, pd.DataFrame) and _is_normalised(data):
        for column in ("customer_id", "placed_at", "amount"):
            missing = data[column].isna().to_numpy()
            if missing.any():
                position = int(np.flatnonzero(missing)[0])
                raise InputFieldError("", f"row {position}", column, "missing value")
        if (data["amount"].to_numpy() < 0).any():
            position = int(np.flatnonzero(data["amount"].to_numpy() < 0)[0])
            raise InputFieldError("", f"row {position}", "amount", "negative amount")
        return _finish(data, exclude_statuses)
    if isinstance(data, pd.DataFrame | pa.Table):
        return read_transactions(data, exclude_statuses=exclude_statuses)
    raise InputError(
        f"expected a transactions DataFrame or pyarrow Table, got {type(data).__name__}"
    )


def _is_normalised(frame: pd.DataFrame) -> bool:
    if not {"customer_id", "placed_at", "amount"} <= set(frame.columns):
        return False
    placed = frame["placed_at"].dtype
    return (
        isinstance(placed, pd.DatetimeTZDtype)
        and str(placed.tz) == "UTC"
        and pd.api.types.is_string_dtype(frame["customer_id"].dtype)
        and frame["amount"].dtype == np.float64
    )


def _resolve_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Return ``{canonical: source column}`` for every canonical column."""
    columns = {name: name for name in CANONICAL_COLUMNS}
    for canonical, theirs in (mapping or {}).items():
        key = _ALIASES.get(canonical, canonical)
        if key not in CANONICAL_COLUMNS:
            known = ", ".join([*CANONICAL_COLUMNS, *_ALIASES])
            raise InputError(f"mapping names unknown column {canonical!r}; known: {known}")
        columns[key] = theirs
    return columns


def _frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed-type object columns: read every column as text and parse it ourselves.
        return pa.Table.from_pandas(frame.astype(str).where(frame.notna()), preserve_index=False)


def _read_file(path: Path, columns: dict[str, str], delimiter: str) -> tuple[pa.Table, _Located]:
    name = str(path)
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path), _Located(name, None)
    from pyarrow import csv as pacsv

    raw_header = _csv_header(path, delimiter)
    header = [cell.strip() for cell in raw_header]
    for canonical, theirs in columns.items():
        absent = theirs not in header and not (canonical == "total" and "amount" in header)
        if CANONICAL_COLUMNS[canonical] and absent:
            raise _missing_column(name, canonical, theirs, header)
    wanted = [
        raw
        for raw, c in zip(raw_header, header, strict=True)
        if c in columns.values() or (c == "amount" and "total" not in header)
    ]
    # Text columns are read as text; Arrow's parallel reader infers the others (timestamps,
    # numbers) and leaves a column as text when it cannot, which the slower path then reads.
    textual = {columns[c] for c in ("customer_id", "order_id", "status", "currency")}
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types={raw: pa.string() for raw in wanted if raw.strip() in textual},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as error:
        raise InputError(f"{name}: {error}") from error
    return table, _Located(name, 2)


def _csv_header(path: Path, delimiter: str) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        row = next(csv.reader(handle, delimiter=delimiter), None)
    if not row:
        raise InputError(f"{path}: the file is empty")
    return row


def _pick_columns(table: pa.Table, columns: dict[str, str], source: str) -> dict[str, Column]:
    present = {name.strip(): name for name in table.column_names}
    picked: dict[str, Column] = {}
    for canonical, theirs in columns.items():
        actual = present.get(theirs)
        if actual is None and canonical == "total" and theirs == "total":
            actual = present.get("amount")
        if actual is None:
            if CANONICAL_COLUMNS[canonical]:
                raise _missing_column(source, canonical, theirs, table.column_names)
            continue
        picked[canonical] = table.column(actual)
    if len(picked["customer_id"]) == 0:
        raise InputError(f"{source or 'transactions'}: no rows")
    return picked


def _missing_column(source: str, canonical: str, theirs: str, found: list[str]) -> InputError:
    where = f"{source}: " if source else ""
    hint = f" (name yours with mapping={{{canonical!r}: ...}})" if theirs == canonical else ""
    listed = ", ".join(found) or "none"
    return InputError(f"{where}missing column {theirs!r}{hint}; found: {listed}")


def _read_cdnow(path: Path) -> pd.DataFrame:
    """Read CDNOW_master.txt: whitespace separated, an optional header line, dates as YYYYMMDD."""
    name = str(path)
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().split()
    has_header = bool(first) and not first[0].isdigit()
    raw = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=_CDNOW_COLUMNS,
        skiprows=1 if has_header else 0,
        dtype=str,
        engine="c",
    )
    located = _Located(name, 2 if has_header else 1)
    picked = {
        "customer_id": pa.array(raw["customer_id"], type=pa.string()),
        "placed_at": pa.array(raw["date"], type=pa.string()),
        "total": pa.array(raw["dollar_value"], type=pa.string()),
    }
    return _normalise(picked, located, "UTC", "%Y%m%d")


def _normalise(
    picked: dict[str, Column], located: _Located, tz: str, date_format: str | None
) -> pd.DataFrame:
    out: dict[str, Column] = {
        "customer_id": _parse_text(picked["customer_id"], located, "customer_id", required=True),
        "placed_at": _parse_timestamp(picked["placed_at"], located, tz, date_format),
        "amount": _parse_money(picked["total"], located, "total", required=True),
    }
    if "order_id" in picked:
        out["order_id"] = _parse_text(picked["order_id"], located, "order_id", required=False)
    if "status" in picked:
        status = _parse_text(picked["status"], located, "status", required=False)
        out["status"] = pc.fill_null(pc.utf8_lower(status), "")
    if "discount" in picked:
        out["discount"] = _parse_money(picked["discount"], located, "discount", required=False)
    frame = pa.table(out).to_pandas()
    if "currency" in picked:
        currencies = pc.unique(
            pc.utf8_upper(pc.utf8_trim_whitespace(picked["currency"].cast(pa.string())))
        ).drop_null()
        values = sorted(c for c in currencies.to_pylist() if c)
        if len(values) > 1:
            where = f"{located.source}: " if located.source else ""
            raise InputError(
                f"{where}mixed currencies ({', '.join(values)}); analyse one currency at a time"
            )
        if values:
            frame.attrs["currency"] = values[0]
    return frame


def _finish(frame: pd.DataFrame, exclude_statuses: Collection[str]) -> pd.DataFrame:
    """Drop the rows whose status is excluded, once: the frame remembers what it dropped."""
    excluded = sorted({s.lower() for s in exclude_statuses})
    if "status" not in frame.columns or not excluded:
        frame.attrs.setdefault("excluded_by_status", 0)
        return frame
    if frame.attrs.get("excluded_statuses") == excluded:
        return frame
    status = pa.array(frame["status"])
    if not pa.types.is_string(status.type):
        status = status.cast(pa.string())
    matches = pc.is_in(pc.utf8_lower(status), value_set=pa.array(excluded, type=pa.string()))
    drop = pc.fill_null(matches, False).to_numpy(zero_copy_only=False)
    already = int(frame.attrs.get("excluded_by_status", 0))
    if not drop.any():
        frame.attrs.update(excluded_by_status=already, excluded_statuses=excluded)
        return frame
    kept = frame.loc[~drop].reset_index(drop=True)
    kept.attrs = {
        **frame.attrs,
        "excluded_by_status": already + int(drop.sum()),
        "excluded_statuses": excluded,
    }
    if kept.empty:
        raise InputError("no purchases left after excluding statuses " + ", ".join(excluded))
    return kept


def _first_true(mask: Column | np.ndarray) -> int:
    values = mask if isinstance(mask, np.ndarray) else mask.to_numpy(zero_copy_only=False)
    return int(np.flatnonzero(values)[0])


def _as_strings(values: Column) -> Column:
    if pa.types.is_floating(values.type):
        # ids that went through a float column (1234.0) read back as integers
        whole = pc.equal(values, pc.floor(values))
        if pc.all(pc.or_kleene(whole, pc.is_null(values))).as_py():
            values = values.cast(pa.int64())
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return pc.utf8_trim_whitespace(values)


def _parse_text(values: Column, located: _Located, field: str, *, required: bool) -> Column:
    text = _as_strings(values)
    if required:
        blank = pc.or_kleene(pc.is_null(text), pc.equal(pc.fill_null(text, ""), ""))
        if pc.any(blank).as_py():
            raise located.error(_first_true(blank), field, "missing value")
    return text


def _ascii_digits(text: pd.Series) -> pd.Series:
    return text.str.translate(_DIGITS)


def _parse_money(values: Column, located: _Located, field: str, *, required: bool) -> Column:
    if (
        pa.types.is_integer(values.type)
        or pa.types.is_floating(values.type)
        or (pa.types.is_decimal(values.type))
    ):
        number = values.cast(pa.float64())
    else:
        text = _as_strings(values)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        try:
            number = text.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            number = _parse_money_slowly(text, located, field)
    missing = pc.is_null(number)
    if pc.any(missing).as_py():
        if required:
            raise located.error(_first_true(missing), field, "missing value")
        number = pc.fill_null(number, 0.0)
    array = number.to_numpy(zero_copy_only=False)
    if not np.isfinite(array).all():
        position = int(np.flatnonzero(~np.isfinite(array))[0])
        raise located.error(position, field, f"not a finite number: {array[position]!r}")
    if (array < 0).any():
        position = int(np.flatnonzero(array < 0)[0])
        raise located.error(
            position,
            field,
            f"negative value {array[position]!r}; record refunds with status 'refunded'",
        )
    return pa.array(array, type=pa.float64())


def _parse_money_slowly(text: Column, located: _Located, field: str) -> Column:
    """Read numbers written with other digits or thousands separators, or locate a bad one."""
    valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
    cleaned = _ascii_digits(pd.Series(text.to_pylist(), dtype=object).fillna("").astype("str"))
    thousands = cleaned.str.match(_THOUSANDS).to_numpy()
    cleaned = cleaned.where(~thousands, cleaned.str.replace(r"[,٬]", "", regex=True))
    parsed = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64)
    failed = np.isnan(parsed) & valid
    if failed.any():
        position = int(np.flatnonzero(failed)[0])
        raise located.error(position, field, f"cannot parse {text[position].as_py()!r} as a number")
    return pa.array(parsed, mask=~valid, type=pa.float64())


def _parse_timestamp(values: Column, located: _Located, tz: str, date_format: str | None) -> Column:
    field = "placed_at"
    kind = values.type
    if pa.types.is_timestamp(kind):
        stamps = values.cast(pa.timestamp("us", tz=kind.tz)) if kind.unit != "us" else values
        if kind.tz is None:
            stamps = _assume_zone(stamps, tz)
    elif pa.types.is_date(kind):
        stamps = _assume_zone(values.cast(pa.timestamp("us")), tz)
    else:
        stamps = _parse_timestamp_text(_as_strings(values), located, tz, date_format)
    missing = pc.is_null(stamps)
    if pc.any(missing).as_py():
        raise located.error(_first_true(missing), field, "missing value")
    return stamps.cast(pa.timestamp("us", tz="UTC"))


def _assume_zone(naive: Column, tz: str) -> Column:
    if tz == "UTC":
        return naive.cast(pa.timestamp("us", tz="UTC"))
    try:
        # a wall-clock time skipped by a DST jump is moved past the gap, a repeated one takes the
        # first occurrence: the order happened, so it must land on some instant
        return pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="latest")
    except pa.ArrowInvalid as error:
        raise InputError(f"unknown time zone {tz!r}") from error


def _parse_timestamp_text(
    text: Column, located: _Located, tz: str, date_format: str | None
) -> Column:
    field = "placed_at"
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if pc.any(pc.is_null(text)).as_py():
        raise located.error(_first_true(pc.is_null(text)), field, "missing value")
    if date_format is not None:
        parsed = pc.strptime(text, format=date_format, unit="us", error_is_null=True)
        failed = pc.is_null(parsed)
        if pc.any(failed).as_py():
            position = _first_true(failed)
            raise located.error(
                position,
                field,
                f"cannot parse {text[position].as_py()!r} with format {date_format!r}",
            )
        return _assume_zone(parsed, tz)
    try:
        return _assume_zone(text.cast(pa.timestamp("us")), tz)
    except pa.ArrowInvalid:
        pass
    try:
        return text.cast(pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        pass
    # Slow path: a mix of shapes, other digits, or a bad value that must be located.
    series = _ascii_digits(pd.Series(text.to_pylist(), dtype=object).astype("str"))
    with_offset = series.str.contains(_HAS_OFFSET, regex=True).to_numpy()
    result = np.empty(len(series), dtype="datetime64[us]")
    for mask, aware in ((with_offset, True), (~with_offset, False)):
        if not mask.any():
            continue
        part = series[mask]
        parsed = pd.to_datetime(part, errors="coerce", format="ISO8601", utc=aware)
        failed = parsed.isna().to_numpy()
        if failed.any():
            position = int(np.flatnonzero(mask)[np.flatnonzero(failed)[0]])
            raise located.error(position, field, f"cannot parse {text[position].as_py()!r}")
        if aware:
            result[mask] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        else:
            wall = pa.array(parsed.to_numpy(dtype="datetime64[us]"), type=pa.timestamp("us"))
            local = _assume_zone(wall, tz).cast(pa.timestamp("us", tz="UTC"))
            result[mask] = local.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
    return pa.array(result, type=pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


_DAY_US = 86_400_000_000
_EPOCH = pd.Timestamp("1970-01-01")

#: Anything `pandas.Timestamp` reads: "2024-03-31", a date, a datetime, a Timestamp.
DateLike: TypeAlias = str | datetime.date | pd.Timestamp | np.datetime64


def day_numbers(placed_at: pd.Series, tz: str = "UTC") -> np.ndarray:
    """Return the local calendar day of each instant as days since 1970-01-01 (int64).

    Bucketing by day is what makes several orders on one day a single purchase occasion, and a
    shop's day ends at its own midnight, hence ``tz``.
    """
    stamps = placed_at
    if str(getattr(stamps.dtype, "tz", "UTC")) != "UTC" or tz != "UTC":
        stamps = stamps.dt.tz_convert(tz).dt.tz_localize(None)
    micros = stamps.to_numpy(dtype="datetime64[us]").view(np.int64)
    return np.floor_divide(micros, _DAY_US)


def day_number(value: DateLike, tz: str = "UTC") -> int:
    """Return the local calendar day of a date or instant as days since 1970-01-01.

    A date, a naive datetime or a string is taken as written (a wall-clock date in ``tz``); an
    aware datetime is first converted to ``tz``.
    """
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise InputError(f"cannot read {value!r} as a date") from error
    if stamp is pd.NaT:
        raise InputError(f"cannot read {value!r} as a date")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(tz).tz_localize(None)
    return int((stamp.normalize() - _EPOCH) // pd.Timedelta(days=1))


def day_to_timestamp(day: int | np.integer, tz: str = "UTC") -> pd.Timestamp:
    """Return the aware instant at which local calendar ``day`` starts (the inverse of `day_number`)."""
    midnight = _EPOCH + pd.Timedelta(days=int(day))
    # some zones skipped or repeated midnight on DST days (Tehran did): take the first real instant
    local = midnight.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return local.tz_convert("UTC")
