"""Importers: readers for each file format, one validation layer, one writer.

    source (canonical CSV | WooCommerce JSON | Shopify JSON/CSV)
      → canonical raw rows with line numbers          (`sources`, `woocommerce`, `shopify`)
      → clean records or (field, reason) problems     (`vafa.customers.validation`)
      → chunks resolved and upserted in one transaction (`pipeline`, `writer`)

The services in `vafa.customers.services` are the entry points; `open_source` picks the reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vafa.core.errors import ValidationError
from vafa.customers.importers import shopify, woocommerce
from vafa.customers.importers.pipeline import ImportResult
from vafa.customers.importers.sources import CsvSource, JsonSource, Source

FORMATS = ("csv", "woocommerce", "shopify")
JSON_KEYS = {
    "customers": ("customers", "customer"),
    "orders": ("orders", "order"),
    "products": ("products", "product"),
}


def open_source(path: Path, *, entity: str, format: str = "csv") -> Source:
    """The reader for `path` holding `entity` rows in `format`.

    Raises `ValidationError` for a format that does not export the entity.
    """
    path = Path(path)
    if format == "csv":
        return CsvSource(path, entity)
    if format == "woocommerce":
        if entity not in woocommerce.ENTITIES:
            raise ValidationError(
                f"WooCommerce exports {', '.join(woocommerce.ENTITIES)}, not {entity}; "
                "use the canonical CSV", field="format",
            )
        return JsonSource(
            path, entity, mapper=woocommerce.MAPPERS[entity], keys=JSON_KEYS[entity],
            labels=woocommerce.LABELS[entity],
        )
    if format == "shopify":
        if entity not in shopify.ENTITIES:
            raise ValidationError(
                f"Shopify exports {', '.join(shopify.ENTITIES)}, not {entity}; "
                "use the canonical CSV", field="format",
            )
        if path.suffix.lower() == ".csv":
            if entity != "customers":
                raise ValidationError(
                    "of Shopify's CSV exports only customers are supported; export orders and "
                    "products as JSON from the Admin API", field="format",
                )
            return CsvSource(
                path, entity, columns=shopify.CSV_COLUMNS, clean=shopify.csv_cell,
                attribute_columns=shopify.CSV_ATTRIBUTES, ignore_columns=shopify.CSV_IGNORED,
                transform=shopify.csv_row, labels=shopify.CSV_LABELS,
            )
        return JsonSource(
            path, entity, mapper=shopify.MAPPERS[entity], keys=JSON_KEYS[entity],
            labels=shopify.LABELS[entity],
        )
    raise ValidationError(f"unknown format {format!r} ({', '.join(FORMATS)})", field="format")


def import_file(*, kind: str, path: Path, **options: Any) -> ImportResult:
    """Import a file of `kind` rows (`customers`, `order-lines`…): a shorthand for
    `vafa.customers.services.records_import` with the CLI's entity names."""
    from vafa.customers.services import records_import

    return records_import(entity=kind.replace("-", "_"), path=path, **options)
