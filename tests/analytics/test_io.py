"""Reading transactions: canonical CSV, mapped exports, CDNOW, frames, and precise errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vafa.analytics.errors import InputError, InputFieldError
from vafa.analytics.io import (
    day_number,
    day_numbers,
    day_to_timestamp,
    ensure_transactions,
    read_transactions,
)

CANONICAL = """order_id,customer_id,placed_at,status,total,currency,discount
1001,c1,2024-01-05T10:00:00Z,paid,120.50,USD,
1002,c2,2024-01-06 09:30:00,paid,80,USD,10
1003,c1,2024-02-01,refunded,50,USD,0
1004,c3,2024-02-03T23:30:00+03:30,cancelled,20,USD,
1005, c2 ,2024-03-01T12:00:00+00:00,Paid,40,usd,5
"""


def write(tmp_path: Path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_it_reads_a_canonical_csv_into_the_normalised_columns(tmp_path: Path) -> None:
    frame = read_transactions(write(tmp_path, CANONICAL))

    assert list(frame.columns) == [
        "customer_id",
        "placed_at",
        "amount",
        "order_id",
        "status",
        "discount",
    ]
    assert str(frame["placed_at"].dtype) == "datetime64[us, UTC]"
    assert frame["amount"].dtype == np.float64
    # refunded and cancelled rows are not purchases
    assert frame["order_id"].tolist() == ["1001", "1002", "1005"]
    assert frame.attrs["excluded_by_status"] == 2
    assert frame.attrs["currency"] == "USD"
    assert frame["customer_id"].tolist() == ["c1", "c2", "c2"]
    assert frame["amount"].tolist() == [120.5, 80.0, 40.0]
    assert frame["discount"].tolist() == [0.0, 10.0, 5.0]
    assert frame["status"].tolist() == ["paid", "paid", "paid"]
    assert frame["placed_at"].tolist() == [
        pd.Timestamp("2024-01-05T10:00:00Z"),
        pd.Timestamp("2024-01-06T09:30:00Z"),
        pd.Timestamp("2024-03-01T12:00:00Z"),
    ]


def test_it_keeps_refunds_when_no_status_is_excluded(tmp_path: Path) -> None:
    frame = read_transactions(write(tmp_path, CANONICAL), exclude_statuses=())

    assert len(frame) == 5
    assert frame["placed_at"].iloc[3] == pd.Timestamp("2024-02-03T20:00:00Z")


def test_it_reads_any_export_through_a_mapping(tmp_path: Path) -> None:
    export = "Order Date;Client;Sales;Ref\n03/01/2024;A-1;10.5;x\n04/01/2024;A-2;7;y\n"
    frame = read_transactions(
        write(tmp_path, export, "shop.csv"),
        mapping={"placed_at": "Order Date", "customer_id": "Client", "total": "Sales"},
        date_format="%d/%m/%Y",
        delimiter=";",
    )

    assert frame["customer_id"].tolist() == ["A-1", "A-2"]
    assert frame["placed_at"].dt.date.astype(str).tolist() == ["2024-01-03", "2024-01-04"]
    assert frame["amount"].tolist() == [10.5, 7.0]
    assert "order_id" not in frame.columns


def test_it_reports_file_line_and_field_of_an_unparsable_date(tmp_path: Path) -> None:
    lines = ["customer_id,placed_at,total"] + [f"c{i},2024-01-0{i},10" for i in range(1, 6)]
    lines.append("c6,2024-13-01,10")  # line 7 of the file
    path = write(tmp_path, "\n".join(lines) + "\n")

    with pytest.raises(InputFieldError) as caught:
        read_transactions(path)

    assert str(caught.value) == f"{path}:7: placed_at: cannot parse '2024-13-01'"
    assert (caught.value.location, caught.value.field) == ("7", "placed_at")


def test_it_reports_the_line_of_an_unparsable_amount(tmp_path: Path) -> None:
    path = write(tmp_path, "customer_id,placed_at,total\nc1,2024-01-01,10\nc2,2024-01-02,ten\n")

    with pytest.raises(InputFieldError, match=r"orders.csv:3: total: cannot parse 'ten'"):
        read_transactions(path)


def test_it_reports_a_missing_customer_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "customer_id,placed_at,total\nc1,2024-01-01,10\n,2024-01-02,5\n")

    with pytest.raises(InputFieldError, match=r"orders.csv:3: customer_id: missing value"):
        read_transactions(path)


def test_it_names_the_missing_column_and_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path, "client,placed_at,total\nc1,2024-01-01,10\n")

    with pytest.raises(InputError, match=r"missing column 'customer_id'.*found: client"):
        read_transactions(path)


def test_it_refuses_a_mapping_to_an_unknown_canonical_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown column 'price'"):
        read_transactions(write(tmp_path, CANONICAL), mapping={"price": "total"})


def test_it_reads_naive_times_in_the_shops_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "customer_id,placed_at,total\nc1,2024-01-05 10:00,1\nc2,2024-01-05,1\n")

    frame = read_transactions(path, tz="Asia/Tehran")

    assert frame["placed_at"].tolist() == [
        pd.Timestamp("2024-01-05T06:30:00Z"),  # Tehran is UTC+03:30
        pd.Timestamp("2024-01-04T20:30:00Z"),
    ]


def test_it_accepts_persian_digits_and_thousands_separators(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'customer_id,placed_at,total\nc1,۲۰۲۴-۰۱-۰۵,"۱,۲۰۰"\nc2,2024-01-06,"1,234.50"\n',
    )

    frame = read_transactions(path)

    assert frame["amount"].tolist() == [1200.0, 1234.5]
    assert frame["placed_at"].iloc[0] == pd.Timestamp("2024-01-05T00:00:00Z")


def test_it_refuses_mixed_currencies(tmp_path: Path) -> None:
    path = write(
        tmp_path, "customer_id,placed_at,total,currency\nc1,2024-01-01,1,IRR\nc2,2024-01-01,1,USD\n"
    )

    with pytest.raises(InputError, match=r"mixed currencies \(IRR, USD\)"):
        read_transactions(path)


def test_it_refuses_a_negative_total_and_points_to_statuses(tmp_path: Path) -> None:
    path = write(tmp_path, "customer_id,placed_at,total\nc1,2024-01-01,-5\n")

    with pytest.raises(InputFieldError, match=r"orders.csv:2: total: negative value.*refunded"):
        read_transactions(path)


def test_it_refuses_a_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_transactions(tmp_path / "nope.csv")


def test_it_reads_a_gzipped_csv_and_a_parquet_file(tmp_path: Path) -> None:
    gz = tmp_path / "orders.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write(CANONICAL)
    from_gzip = read_transactions(gz)
    parquet = tmp_path / "orders.parquet"
    pq.write_table(pa.Table.from_pandas(from_gzip, preserve_index=False), parquet)

    from_parquet = read_transactions(parquet)

    assert len(from_gzip) == 3
    pd.testing.assert_frame_equal(from_gzip, from_parquet, check_like=True)


def test_it_reads_cdnow_master_with_its_published_counts(cdnow_dir: Path) -> None:
    frame = read_transactions(cdnow_dir / "CDNOW_master.txt", format="cdnow")

    # counts from data/cdnow/README.md
    assert len(frame) == 69_659
    assert frame["customer_id"].nunique() == 23_570
    first = frame.iloc[0]
    assert (first["customer_id"], first["amount"]) == ("00001", 11.77)
    assert first["placed_at"] == pd.Timestamp("1997-01-01T00:00:00Z")


def test_it_accepts_a_dataframe_and_an_arrow_table_alike() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [7, 8],
            "placed_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00"]),
            "total": [1.5, 2],
        }
    )

    from_frame = read_transactions(frame)
    from_arrow = read_transactions(pa.Table.from_pandas(frame))

    pd.testing.assert_frame_equal(from_frame, from_arrow)
    assert from_frame["customer_id"].tolist() == ["7", "8"]
    assert from_frame["placed_at"].iloc[0] == pd.Timestamp("2024-01-01T10:00:00Z")


def test_it_locates_a_bad_value_of_a_dataframe_by_row() -> None:
    frame = pd.DataFrame(
        {"customer_id": ["a", "b"], "placed_at": ["2024-01-01", "someday"], "total": [1, 2]}
    )

    with pytest.raises(InputFieldError, match=r"^row 1: placed_at: cannot parse 'someday'$"):
        read_transactions(frame)


def test_ensure_transactions_passes_a_normalised_frame_through_unchanged() -> None:
    frame = read_transactions(
        pd.DataFrame({"customer_id": ["a"], "placed_at": ["2024-01-01"], "total": [3.0]})
    )

    assert ensure_transactions(frame) is frame


def test_ensure_transactions_drops_refunds_from_a_normalised_frame() -> None:
    frame = read_transactions(
        pd.DataFrame(
            {
                "customer_id": ["a", "b"],
                "placed_at": ["2024-01-01", "2024-01-02"],
                "total": [3.0, 4.0],
                "status": ["paid", "refunded"],
            }
        ),
        exclude_statuses=(),
    )

    assert ensure_transactions(frame)["customer_id"].tolist() == ["a"]


def test_day_numbers_bucket_instants_by_the_shops_calendar_day() -> None:
    instants = pd.Series(pd.to_datetime(["2024-01-04T21:00:00Z", "2024-01-04T20:00:00Z"]))

    utc_days = day_numbers(instants)
    tehran_days = day_numbers(instants, "Asia/Tehran")

    assert utc_days.tolist() == [day_number("2024-01-04")] * 2
    # 21:00 UTC is 00:30 the next day in Tehran; 20:00 UTC is 23:30 the same day
    assert tehran_days.tolist() == [day_number("2024-01-05"), day_number("2024-01-04")]
    assert day_to_timestamp(day_number("2024-01-05"), "Asia/Tehran") == pd.Timestamp(
        "2024-01-04T20:30:00Z"
    )
