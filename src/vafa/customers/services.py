"""Writes to the shop's data: imports from files, upserts from the API and from webhooks.

Every function here is keyword-only and transactional, and every one goes through the same
pipeline (`vafa.customers.importers.pipeline`): one validation layer, one bulk writer. A write
with any bad row writes nothing and raises `ImportRejected` (its `errors` say line and field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vafa.customers.importers import open_source, pipeline, shopify, woocommerce
from vafa.customers.importers.pipeline import ImportResult
from vafa.customers.importers.sources import JsonSource, RecordsSource, Source
from vafa.customers.validation import ENTITIES, default_context

ProgressCallback = Callable[[Source, int], None]


def records_import(
    *,
    entity: str,
    path: Path,
    format: str = "csv",
    dry_run: bool = False,
    calendar: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
    on_progress: ProgressCallback | None = None,
    notify: bool = False,
) -> ImportResult:
    """Import a file of `entity` rows (customers, products, orders, order_lines, events,
    tickets), all or nothing; `dry_run` reports the counts and writes nothing.

    `notify` records the customers and orders created and the status changes in the change
    feed (`vafa.customers.changes`), so flows react as to an API write; off by default:
    importing years of history must not send a thank-you for every old order.

    `calendar`, `timezone` and `currency` read dates, naive timestamps and amounts without a
    currency (defaults: Gregorian, the shop's `TIME_ZONE`, `VAFA_DEFAULT_CURRENCY`). Consent
    changes are recorded with the source `import:<file name>`.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}")
    path = Path(path)
    ctx = default_context(
        calendar=calendar, timezone=timezone, currency=currency,
        source=f"import:{path.name}", derive_event_keys=True,
    )
    source = open_source(path, entity=entity, format=format)
    return pipeline.run(
        entity=entity, source=source, ctx=ctx, dry_run=dry_run, on_progress=on_progress,
        notify=notify,
    )


def customers_import(*, path: Path, **options: Any) -> ImportResult:
    """Import customers (and their email/SMS consent) from a file; see `records_import`."""
    return records_import(entity="customers", path=path, **options)


def products_import(*, path: Path, **options: Any) -> ImportResult:
    """Import products (creating their categories) from a file; see `records_import`."""
    return records_import(entity="products", path=path, **options)


def orders_import(*, path: Path, **options: Any) -> ImportResult:
    """Import orders from a file; their customers must exist. See `records_import`."""
    return records_import(entity="orders", path=path, **options)


def order_lines_import(*, path: Path, **options: Any) -> ImportResult:
    """Import order lines; their orders and products must exist. See `records_import`."""
    return records_import(entity="order_lines", path=path, **options)


def events_import(*, path: Path, **options: Any) -> ImportResult:
    """Import behaviour events; their customers must exist. See `records_import`."""
    return records_import(entity="events", path=path, **options)


def tickets_import(*, path: Path, **options: Any) -> ImportResult:
    """Import support tickets; their customers must exist. See `records_import`."""
    return records_import(entity="tickets", path=path, **options)


def _upsert(
    entity: str, items: Sequence[Mapping[str, Any]], *, batch: bool, source: str
) -> ImportResult:
    ctx = default_context(source=source)
    return pipeline.run(
        entity=entity, source=RecordsSource(items, batch=batch), ctx=ctx, notify=True
    )


def customer_upsert(*, data: Mapping[str, Any], source: str = "api") -> ImportResult:
    """Create or update one customer from canonical fields (absent fields are left alone)."""
    return _upsert("customers", [data], batch=False, source=source)


def customers_upsert(*, items: Sequence[Mapping[str, Any]], source: str = "api") -> ImportResult:
    """Create or update several customers, all or nothing."""
    return _upsert("customers", items, batch=True, source=source)


def order_upsert(*, data: Mapping[str, Any], source: str = "api") -> ImportResult:
    """Create or update one order (with its `lines`, when given, as the complete set)."""
    return _upsert("orders", [data], batch=False, source=source)


def orders_upsert(*, items: Sequence[Mapping[str, Any]], source: str = "api") -> ImportResult:
    """Create or update several orders, all or nothing."""
    return _upsert("orders", items, batch=True, source=source)


def event_record(*, data: Mapping[str, Any], source: str = "api") -> ImportResult:
    """Record one event (an `event_id`, when given, makes a repeat a no-op)."""
    return _upsert("events", [data], batch=False, source=source)


def events_record(*, items: Sequence[Mapping[str, Any]], source: str = "api") -> ImportResult:
    """Record several events, all or nothing."""
    return _upsert("events", items, batch=True, source=source)


PLATFORMS = {"woocommerce": woocommerce, "shopify": shopify}


def platform_object_apply(*, platform: str, entity: str, body: str) -> ImportResult:
    """Apply one WooCommerce or Shopify object (a webhook body) through the same mappers and
    rules as a file import of that platform's export."""
    module = PLATFORMS[platform]
    ctx = default_context(source=f"webhook:{platform}")
    source = JsonSource(
        None, entity, mapper=module.MAPPERS[entity], labels=module.LABELS[entity], text=body,
        name=f"{platform} webhook",
    )
    return pipeline.run(entity=entity, source=source, ctx=ctx, notify=True)
