"""Source rows → validation → reference resolution → bulk writer, in one transaction.

`run()` is what every import service and API write calls. It reads a source row by row, cleans
each row with `vafa.customers.validation`, collects clean records into chunks and hands each
chunk to the entity's handler, which resolves external ids (a customer, an order, a product)
against the database with one query per chunk and upserts with the bulk writer.

Change feed: with `notify` (asked by API and webhook writes; file imports only when told) the
handlers snapshot the rows a chunk touches before and after writing and record the customers
and orders created and the order status changes in `vafa.customers.changes`, in the same
transaction. Notifying writes run without the background writer thread (the feed is
written through the ORM, which is bound to the caller's thread); the default path of a big
import is untouched.

All or nothing: everything happens inside one `transaction.atomic()`. The first bad row stops
the writing (the rest of the file is still read, to report every problem), and at the end any
problem rolls the transaction back and raises `ImportRejected` with the first 50 problems and
their total. A dry run does the same work and rolls back even when all is well, so its counts
are exactly what a real run would do.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.db import transaction

from vafa.core.errors import ImportRejected, RowError
from vafa.customers import changes as feed
from vafa.customers.importers import writer as w
from vafa.customers.importers.sources import Source
from vafa.customers.models import Customer, FulfillmentStatus, Order, Product
from vafa.customers.validation import CLEANERS, Problem, ReadContext, Record

MAX_REPORTED_ERRORS = 50
PK_CACHE_SIZE = 500_000

# A chunk item: (line, field prefix, record).
Item = tuple[int, str, Record]
# A problem the handler found: (line, field prefix, canonical field, reason).
Found = tuple[int, str, str, str]
Cleaner = Callable[[Mapping[str, Any], ReadContext], tuple[Record, list[Problem]]]


@dataclass
class ImportResult:
    """What an import did (or, in a dry run, would do)."""

    entity: str
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    """Remarks of the reader, e.g. columns it ignored."""

    def __str__(self) -> str:
        text = (
            f"{self.rows:,} rows: {self.created:,} created, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged"
        )
        if self.notes:
            text += " (" + ", ".join(f"{k}: {v:,}" for k, v in self.notes.items()) + ")"
        return text + (" [dry run]" if self.dry_run else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity, "rows": self.rows, "created": self.created,
            "updated": self.updated, "unchanged": self.unchanged, "duplicates": self.duplicates,
            "notes": dict(self.notes), "dry_run": self.dry_run,
        }


# Shop spellings of an order status that also say where the parcel is. `validation` maps them
# all to the payment status `paid`; the fulfilment is kept apart so that "shipped" can reach the
# change feed. (This reading belongs with the other status spellings in `validation`; it lives
# here until that module takes it over.)
FULFILLMENT_SPELLINGS = {
    "shipped": FulfillmentStatus.SHIPPED, "fulfilled": FulfillmentStatus.SHIPPED,
    "completed": FulfillmentStatus.SHIPPED, "complete": FulfillmentStatus.SHIPPED,
    "in_transit": FulfillmentStatus.SHIPPED, "delivered": FulfillmentStatus.DELIVERED,
}
FULFILLMENT = "fulfillment_status"


def _with_fulfillment(clean: Cleaner) -> Cleaner:
    """The orders cleaner, plus the fulfilment read from the raw status (when it says one)."""

    def clean_order(raw: Mapping[str, Any], ctx: ReadContext) -> tuple[Record, list[Problem]]:
        record, problems = clean(raw, ctx)
        if problems:
            return record, problems
        # an explicit fulfilment (Shopify's) wins over one read from the order's status
        for said in (raw.get(FULFILLMENT), raw.get("status")):
            fulfillment = FULFILLMENT_SPELLINGS.get(said.strip().lower()) \
                if isinstance(said, str) else None
            if fulfillment:
                record[FULFILLMENT] = fulfillment.value
                break
        return record, problems

    return clean_order


class Handler:
    """Writes chunks of one entity's clean records; subclasses resolve references.

    `pending` collects the change-feed entries of a notifying write (None: not notifying)."""

    table: ClassVar[w.Table]
    # Record keys that are not columns of `table` (references, nested records).
    not_columns: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, writer: w.BulkWriter, ctx: ReadContext) -> None:
        self.writer = writer
        self.ctx = ctx
        self.counts = w.Counts()
        self.notes: Counter[str] = Counter()
        # External id → pk of referenced customers and products seen so far in this import:
        # a big orders file names each customer many times. Valid for the whole transaction
        # (rows are never deleted by an import); cleared when it grows past PK_CACHE_SIZE.
        self._pks: dict[type, dict[str, int]] = {}
        self.pending: list[feed.PendingChange] | None = None

    def add(self, counts: w.Counts) -> None:
        self.counts.created += counts.created
        self.counts.updated += counts.updated
        self.counts.unchanged += counts.unchanged
        self.counts.duplicates += counts.duplicates

    def present(self, record: Record) -> frozenset[str]:
        return frozenset(k for k in record if k not in self.not_columns)

    def upsert_grouped(self, table: w.Table, records: Sequence[Record]) -> w.Counts:
        """Upsert records, grouped by the set of fields they carry (one statement per group)."""
        # Records from one file carry the same keys in the same order: group on that tuple
        # (cheap), then compute each group's set of columns once.
        groups: dict[tuple[str, ...], list[Record]] = {}
        for record in records:
            groups.setdefault(tuple(record), []).append(record)
        total = w.Counts()
        for group in groups.values():
            present = self.present(group[0])
            counts = self.writer.upsert(table, group, present=present, now=self.ctx.now)
            total.created += counts.created
            total.updated += counts.updated
            total.unchanged += counts.unchanged
            total.duplicates += counts.duplicates
        return total

    def write(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        """Resolve and (when `write`) upsert one chunk; return the problems found."""
        raise NotImplementedError

    def resolve(
        self,
        items: Sequence[Item],
        model: type[Customer | Order | Product],
        ref: str,
        target: str,
        label: str,
        hint: tuple[str, str],
        known: set[str] | None = None,
    ) -> list[Found]:
        """Replace `record[ref]` (an external id) by `record[target]` (a primary key); an id the
        database does not have (and `known` does not promise) is a problem."""
        cache = self._pks.setdefault(model, {}) if model is not Order else {}
        if len(cache) > PK_CACHE_SIZE:
            cache.clear()
        missing = {record[ref] for _, _, record in items} - cache.keys()
        if missing:
            cache.update(self.writer.lookup(model, missing))
        found = cache
        problems: list[Found] = []
        for line, prefix, record in items:
            key = record.pop(ref)
            pk = found.get(key)
            if pk is None and (known is None or key not in known):
                problems.append((line, prefix, label, f"unknown {hint[0]} {key!r} ({hint[1]})"))
            record[target] = pk
        return problems


class CustomersHandler(Handler):
    table = w.CUSTOMERS
    not_columns = frozenset({"consents"})

    def write(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        if not write:
            return []
        records = [record for _, _, record in items]
        keys = {r["external_id"] for r in records}
        before = self.writer.lookup(Customer, keys) if self.pending is not None else {}
        self.add(self.upsert_grouped(self.table, records))
        if self.pending is not None:
            self.pending += feed.customers_created(before, self.writer.lookup(Customer, keys))
        self.notes["consents changed"] += self.write_consents(records)
        return []

    def write_consents(self, records: Sequence[Record]) -> int:
        wanted = [r for r in records if r.get("consents")]
        if not wanted:
            return 0
        pks = self.writer.lookup(Customer, {r["external_id"] for r in wanted})
        rows = [
            {"customer_id": pks[r["external_id"]], "channel": channel, "granted": granted,
             "source": self.ctx.source[:100]}
            for r in wanted for channel, granted in r["consents"].items()
        ]
        counts = self.writer.upsert(
            w.CONSENTS, rows, present={"granted", "source"}, now=self.ctx.now
        )
        return counts.created + counts.updated


class ProductsHandler(Handler):
    table = w.PRODUCTS
    not_columns = frozenset({"category_name"})

    def write(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        if not write:
            return []
        records = [record for _, _, record in items]
        names = {r["category_name"] for r in records if r.get("category_name")}
        categories = self.writer.lookup(w.CATEGORIES.model, names, column="name")
        missing = [{"name": n} for n in names - categories.keys()]
        if missing:
            created = self.writer.upsert(w.CATEGORIES, missing, present=(), now=self.ctx.now)
            self.notes["categories created"] += created.created
            categories.update(
                self.writer.lookup(w.CATEGORIES.model, {m["name"] for m in missing}, column="name")
            )
        for record in records:
            if "category_name" in record:
                name = record.pop("category_name")
                record["category_id"] = categories.get(name) if name else None
        self.add(self.upsert_grouped(self.table, records))
        return []


class LinesMixin(Handler):
    """Order lines: products referenced by external id, created when the line names them."""

    def write_lines(
        self, lines: list[Item], *, write: bool
    ) -> tuple[list[Found], w.Counts]:
        """Resolve the lines' products (creating named ones) and upsert the lines."""
        named = {r["product_ref"]: r for _, _, r in lines if r.get("product_name")}
        if write and named:
            missing = set(named) - self.writer.lookup(Product, set(named)).keys()
            if missing:
                rows = [
                    {"external_id": ref, "name": named[ref]["product_name"]} for ref in missing
                ]
                created = self.writer.upsert(w.PRODUCTS, rows, present=(), now=self.ctx.now)
                self.notes["products created from lines"] += created.created
        problems = self.resolve(
            lines, Product, "product_ref", "product_id", "product_id",
            ("product", "import products first"), known=set(named),
        )
        counts = w.Counts()
        if write and not problems:
            for _, _, record in lines:
                record.pop("product_name", None)
            counts = self.upsert_grouped(w.ORDER_LINES, [r for _, _, r in lines])
        return problems, counts


class OrdersHandler(LinesMixin):
    table = w.ORDERS
    not_columns = frozenset({"lines", "customer", FULFILLMENT})

    def snapshot(self, keys: set[str]) -> dict[str, feed.OrderState]:
        """external id → (pk, customer pk, status, fulfilment, refunded amount) of the orders
        that exist."""
        rows = Order.objects.filter(external_id__in=keys).values_list(
            "external_id", "id", "customer_id", "status", "fulfillment_status", "refunded_amount"
        )
        return {key: (pk, customer, status, fulfilled, refunded)
                for key, pk, customer, status, fulfilled, refunded in rows}

    def write_fulfillment(self, records: Sequence[Record]) -> int:
        """Set the fulfilment of the orders whose status said one. It only moves forward: a
        later plain "paid" does not undo "shipped", nor a late "shipped" undo "delivered"."""
        rows = [(r[FULFILLMENT], r["external_id"], r[FULFILLMENT])
                for r in records if r.get(FULFILLMENT)]
        if not rows:
            return 0
        table = Order._meta.db_table
        sql = (f'UPDATE "{table}" SET "fulfillment_status" = %s '
               'WHERE "external_id" = %s AND "fulfillment_status" <> %s '
               f"AND \"fulfillment_status\" <> '{FulfillmentStatus.DELIVERED.value}'")
        with self.writer.connection.cursor() as cursor:
            cursor.executemany(sql, rows)
            return max(cursor.rowcount, 0)

    def write(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        buyers = [r["customer"] for _, _, r in items if r.get("customer")]
        notify = write and self.pending is not None
        order_keys = {r["external_id"] for _, _, r in items}
        orders_before = self.snapshot(order_keys) if notify else {}
        if buyers and write:
            # A platform order carries its buyer: create the ones we do not know yet (the
            # customer webhook or import stays the authority on their details).
            buyer_keys = {b["external_id"] for b in buyers}
            known_buyers = self.writer.lookup(Customer, buyer_keys) if notify else {}
            created = self.writer.upsert(
                w.CUSTOMERS, buyers, present=(),
                now=self.ctx.now,
            )
            self.notes["customers created from orders"] += created.created
            if notify and self.pending is not None and created.created:
                self.pending += feed.customers_created(
                    known_buyers, self.writer.lookup(Customer, buyer_keys)
                )
        problems = self.resolve(
            items, Customer, "customer_ref", "customer_id", "customer_id",
            ("customer", "import customers first"),
            known={b["external_id"] for b in buyers},
        )
        write = write and not problems
        records = [record for _, _, record in items]
        if write:
            self.add(self.upsert_grouped(self.table, records))
            self.notes["fulfilment changed"] += self.write_fulfillment(records)
        problems += self.write_order_lines(items, write=write)
        if notify and not problems and self.pending is not None:
            self.pending += feed.order_changes(orders_before, self.snapshot(order_keys))
        return problems

    def write_order_lines(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        """Write the lines of the orders that carry them (their complete set)."""
        problems: list[Found] = []
        with_lines = [(line, prefix, r) for line, prefix, r in items if "lines" in r]
        if not with_lines:
            return problems
        order_pks = self.writer.lookup(Order, {r["external_id"] for _, _, r in with_lines})
        lines: list[Item] = []
        last_line: dict[int, int] = {}
        for line, prefix, record in with_lines:
            order_pk = order_pks.get(record["external_id"])
            for index, item in enumerate(record["lines"]):
                lines.append((line, f"{prefix}lines[{index}].", {**item, "order_id": order_pk}))
            if order_pk is not None:
                last_line[order_pk] = len(record["lines"])
        line_problems, counts = self.write_lines(lines, write=write)
        problems += line_problems
        self.notes["lines created"] += counts.created
        self.notes["lines updated"] += counts.updated
        self.notes["lines unchanged"] += counts.unchanged
        if write and not problems:
            self.notes["lines removed"] += self.writer.delete_lines_beyond(last_line)
        return problems


class OrderLinesHandler(LinesMixin):
    """A canonical order-lines file; lines without `line_no` are numbered in file order."""

    table = w.ORDER_LINES

    def __init__(self, writer: w.BulkWriter, ctx: ReadContext) -> None:
        super().__init__(writer, ctx)
        self.next_line_no: Counter[str] = Counter()

    def write(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        for _, _, record in items:
            if record.get("line_no") is None:
                self.next_line_no[record["order_ref"]] += 1
                record["line_no"] = self.next_line_no[record["order_ref"]]
        problems = self.resolve(
            items, Order, "order_ref", "order_id", "order_id", ("order", "import orders first")
        )
        line_problems, counts = self.write_lines(list(items), write=write and not problems)
        self.add(counts)
        return problems + line_problems


class CustomerOwnedHandler(Handler):
    """Events and tickets: rows that belong to a customer who must already exist."""

    def write(self, items: Sequence[Item], *, write: bool) -> list[Found]:
        problems = self.resolve(
            items, Customer, "customer_ref", "customer_id", "customer_id",
            ("customer", "import customers first"),
        )
        if write and not problems:
            self.add(self.upsert_grouped(self.table, [record for _, _, record in items]))
        return problems


class EventsHandler(CustomerOwnedHandler):
    table = w.EVENTS


class TicketsHandler(CustomerOwnedHandler):
    table = w.TICKETS


HANDLERS: dict[str, type[Handler]] = {
    "customers": CustomersHandler,
    "products": ProductsHandler,
    "orders": OrdersHandler,
    "order_lines": OrderLinesHandler,
    "events": EventsHandler,
    "tickets": TicketsHandler,
}


class _Errors:
    """The first problems, in file order, and how many there were in all (thread-safe: the
    background writer adds problems too)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.kept: list[RowError] = []
        self.total = 0
        self._lock = threading.Lock()

    def add(self, line: int, prefix: str, name: str, reason: str) -> None:
        with self._lock:
            self.total += 1
            if len(self.kept) < MAX_REPORTED_ERRORS:
                self.kept.append(RowError(line, prefix + self.source.field_label(name), reason))


class _Sink:
    """Hands chunks to the handler: inline for small inputs, and for large ones on a background
    thread, so that the database works on one chunk while this thread reads and validates the
    next (both the SQLite and the psycopg drivers release the GIL while the database works).

    The thread uses the caller's connection (Django's thread-sharing switch is turned on for
    the duration) and therefore the caller's transaction; the caller does not touch the
    connection until `close()` has joined the thread. At most `QUEUE_CHUNKS` chunks wait, so
    memory stays bounded. An exception in the thread is re-raised by `close()`.
    """

    QUEUE_CHUNKS = 2

    def __init__(self, handler: Handler, errors: _Errors, *, background: bool) -> None:
        self.handler = handler
        self.errors = errors
        self.background = background
        self.queue: queue.Queue[list[Item] | None] = queue.Queue(maxsize=self.QUEUE_CHUNKS)
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def _write(self, chunk: list[Item]) -> None:
        for line, prefix, name, reason in self.handler.write(chunk, write=not self.errors.total):
            self.errors.add(line, prefix, name, reason)

    def _work(self) -> None:
        while (chunk := self.queue.get()) is not None:
            if self.failure is None:
                try:
                    self._write(chunk)
                except BaseException as exc:  # handed to the caller's thread by close()
                    self.failure = exc

    def put(self, chunk: list[Item], *, last: bool = False) -> None:
        if self.failure is not None:
            raise self.failure
        if self.thread is None and (last or not self.background):
            self._write(chunk)
            return
        if self.thread is None:
            self.handler.writer.connection.inc_thread_sharing()
            self.thread = threading.Thread(target=self._work, name="vafa-import-writer")
            self.thread.start()
        self.queue.put(chunk)

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
            self.handler.writer.connection.dec_thread_sharing()
        if self.failure is not None:
            raise self.failure


def run(
    *,
    entity: str,
    source: Source,
    ctx: ReadContext,
    dry_run: bool = False,
    on_progress: Callable[[Source, int], None] | None = None,
    chunk_size: int | None = None,
    background: bool = True,
    notify: bool = False,
) -> ImportResult:
    """Import every row of `source` as `entity`, all or nothing (see the module docstring).

    `notify` records what was created or changed in the change feed (the API and webhook
    services always ask; file imports only when told to).

    With `background` (and a database where it pays off, see
    `BulkWriter.overlaps_parsing`), inputs of more than one chunk are written by a background
    thread while the next chunk is read (see `_Sink`).
    """
    started = time.perf_counter()
    writer = w.writer_for()
    handler = HANDLERS[entity](writer, ctx)
    clean = CLEANERS[entity]
    if entity == "orders":
        clean = _with_fulfillment(clean)
    if notify and entity in {"customers", "orders"}:
        handler.pending = []
        background = False  # the feed is written through this thread's ORM connection
    errors = _Errors(source)
    size = chunk_size or writer.chunk_size
    rows = 0
    chunk: list[Item] = []

    with transaction.atomic(), writer.bulk():
        sink = _Sink(handler, errors, background=background and writer.overlaps_parsing)
        try:
            for row in source.rows():
                if row.data is None:
                    for name, reason in row.problems:
                        errors.add(row.line, row.prefix, name, reason)
                    continue
                record, problems = clean(row.data, ctx)
                if problems:
                    for name, reason in problems:
                        errors.add(row.line, row.prefix, name, reason)
                    continue
                rows += 1
                chunk.append((row.line, row.prefix, record))
                if len(chunk) >= size:
                    sink.put(chunk)
                    chunk = []
                    if on_progress is not None:
                        on_progress(source, rows)
            if chunk:
                sink.put(chunk, last=True)
        finally:
            sink.close()
        if on_progress is not None:
            on_progress(source, rows)
        if errors.total:
            # Reported problems come in file order (handler problems arrive a chunk late).
            errors.kept.sort(key=lambda e: e.line)
            raise ImportRejected(errors.kept, errors.total, source.name)
        if dry_run:
            transaction.set_rollback(True)
        elif handler.pending:
            feed.changes_record(changes=handler.pending, source=ctx.source, now=ctx.now)
    counts = handler.counts
    return ImportResult(
        entity=entity, source=source.name, rows=rows, created=counts.created,
        updated=counts.updated, unchanged=counts.unchanged, duplicates=counts.duplicates,
        notes={k: v for k, v in handler.notes.items() if v}, dry_run=dry_run,
        seconds=time.perf_counter() - started, messages=list(source.notes),
    )
