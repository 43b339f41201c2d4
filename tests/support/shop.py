"""A small synthetic shop loaded straight into the database, for tests of what reads orders."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from vafa.customers.models import Customer, Order
from vafa.customers.synthetic import generate_shop


def load_shop(folder: Path, *, customers: int = 300, seed: int = 7) -> dict[str, int]:
    """Generate a shop and insert its customers and orders with the ORM (no importer)."""
    generate_shop(folder, customers=customers, seed=seed)
    with (folder / "customers.csv").open(encoding="utf-8") as handle:
        Customer.objects.bulk_create(
            [Customer(external_id=row["customer_id"], first_name=row["first_name"],
                      last_name=row["last_name"], city=row["city"])
             for row in csv.DictReader(handle)],
            batch_size=1000,
        )
    pks = dict(Customer.objects.values_list("external_id", "pk"))
    with (folder / "orders.csv").open(encoding="utf-8") as handle:
        orders = [
            Order(external_id=row["order_id"], customer_id=pks[row["customer_id"]],
                  placed_at=datetime.fromisoformat(row["placed_at"]), status=row["status"],
                  total=Decimal(row["total"]), discount=Decimal(row["discount"]),
                  shipping=Decimal(row["shipping"]), currency=row["currency"],
                  refunded_amount=(Decimal(row["total"]) / 2
                                   if row["status"] == "partially_refunded" else Decimal(0)))
            for row in csv.DictReader(handle)
        ]
    Order.objects.bulk_create(orders, batch_size=1000)
    return {"customers": len(pks), "orders": len(orders)}
