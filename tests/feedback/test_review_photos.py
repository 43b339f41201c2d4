"""Review photos (point 6) and the review form behind a signed review-request link: type
checked by content, size capped, stored through Django's storage, shown to moderators and in
the API once published."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from vafa.core.errors import ValidationError
from vafa.core.services import apikey_create
from vafa.customers.models import Customer, Order, OrderLine, OrderStatus, Product
from vafa.feedback import conf
from vafa.feedback.links import review_url
from vafa.feedback.models import Review
from vafa.feedback.reviews import photo_kind, review_moderate, review_photo_set, review_submit

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 10, tzinfo=UTC)


def png() -> bytes:
    """A real 1×1 PNG (signature, IHDR, IDAT, IEND with their CRCs)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
WEBP_HEAD = b"RIFF\x24\x00\x00\x00WEBPVP8 "


@pytest.fixture(autouse=True)
def media(settings: object, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")  # type: ignore[attr-defined]
    return tmp_path / "media"


@pytest.fixture
def bought(sara: Customer) -> Product:
    product = Product.objects.create(external_id="P1", name="چای")
    order = Order.objects.create(external_id="O1", customer=sara, placed_at=NOW,
                                 status=OrderStatus.PAID, total=Decimal(10), currency="IRT")
    OrderLine.objects.create(order=order, line_no=1, product=product, quantity=1,
                             unit_price=Decimal(10))
    return product


def test_photos_are_recognised_by_their_content_not_their_name() -> None:
    assert photo_kind(png()) == "png"
    assert photo_kind(JPEG_HEAD) == "jpg" and photo_kind(WEBP_HEAD) == "webp"
    assert photo_kind(b"<svg xmlns='http://www.w3.org/2000/svg'>") is None
    assert photo_kind(b"GIF89a") is None and photo_kind(b"") is None


def test_a_review_with_a_photo_is_stored_under_a_random_name(
    sara: Customer, bought: Product, media: Path
) -> None:
    photo = SimpleUploadedFile("../../etc/passwd.png", png(), content_type="image/png")
    review = review_submit(customer=sara, product=bought, stars=5, photo=photo)
    name = str(review.photo.name)
    assert name.startswith("reviews/") and name.endswith(".png")
    assert "passwd" not in name
    assert (media / name).read_bytes() == png()


def test_a_script_named_like_a_photo_or_a_huge_file_is_refused_and_nothing_is_kept(
    sara: Customer, bought: Product, media: Path
) -> None:
    fake = SimpleUploadedFile("cat.jpg", b"<script>alert(1)</script>", content_type="image/jpeg")
    with pytest.raises(ValidationError) as refused:
        review_submit(customer=sara, product=bought, stars=5, photo=fake)
    assert refused.value.field == "photo"
    huge = SimpleUploadedFile("big.jpg", JPEG_HEAD + b"0" * conf.MAX_PHOTO_BYTES)
    with pytest.raises(ValidationError):
        review_submit(customer=sara, product=bought, stars=5, photo=huge)
    assert not Review.objects.exists()
    assert not (media / "reviews").exists()


def test_the_review_link_opens_a_form_that_takes_stars_text_and_a_photo(
    sara: Customer, bought: Product
) -> None:
    path = urlsplit(review_url(customer_id=sara.pk, product_id=bought.pk)).path
    client = Client()
    form = client.get(path)
    assert form.status_code == 200
    html = form.content.decode()
    assert 'dir="rtl"' in html and 'type="file" name="photo"' in html and "چای" in html
    refused = client.post(path, {"stars": "۵", "photo": SimpleUploadedFile("x.png", b"GIF89a")})
    assert refused.status_code == 400
    assert "JPEG" in refused.content.decode() or "تصویر" in refused.content.decode()
    sent = client.post(path, {"stars": "۵", "text": "<b>عالی</b>",
                              "photo": SimpleUploadedFile("x.png", png())})
    assert sent.status_code == 200
    review = Review.objects.get()
    assert review.stars == 5 and review.text == "<b>عالی</b>" and review.photo
    again = client.post(path, {"stars": "4"})
    assert again.status_code == 400 and Review.objects.count() == 1


def test_a_forged_review_link_gets_a_clear_page(sara: Customer, bought: Product) -> None:
    path = urlsplit(review_url(customer_id=sara.pk, product_id=bought.pk)).path
    forged = path.replace(f"{sara.pk}:", f"{sara.pk + 1}:")
    assert Client().get(forged).status_code == 404
    assert Client().get("/f/r/nonsense/").status_code == 404


def test_moderators_see_the_photo_and_the_public_only_once_published(
    sara: Customer, bought: Product
) -> None:
    review = review_submit(customer=sara, product=bought, stars=2,
                           photo=SimpleUploadedFile("x.png", png()))
    photo_path = f"/f/review-photos/{review.pk}/"
    assert Client().get(photo_path).status_code == 404
    staff = Client()
    staff.force_login(User.objects.create_superuser("mina", password="x-long-pass-123"))
    seen = staff.get(photo_path)
    assert seen.status_code == 200 and seen["Content-Type"] == "image/png"
    assert seen["X-Content-Type-Options"] == "nosniff"
    admin_page = staff.get(f"/admin/feedback/review/{review.pk}/change/").content.decode()
    assert photo_path in admin_page
    review_moderate(review=review, publish=True)
    public = Client().get(photo_path)
    assert public.status_code == 200
    assert b"".join(public.streaming_content) == png()  # type: ignore[attr-defined]


def test_the_shop_uploads_a_photo_through_the_api_and_lists_it(
    sara: Customer, bought: Product
) -> None:
    review = review_submit(customer=sara, product=bought, stars=4)
    key = apikey_create(name="shop")[1]
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "p1"}
    client = Client()
    bad = client.post(f"/api/v1/reviews/{review.pk}/photo",
                      {"photo": SimpleUploadedFile("x.webp", b"RIFF....AVI ")},
                      headers={**headers, "Idempotency-Key": "p0"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "photo"
    uploaded = client.post(f"/api/v1/reviews/{review.pk}/photo",
                           {"photo": SimpleUploadedFile("x.webp", WEBP_HEAD + b"\x00" * 20)},
                           headers=headers)
    assert uploaded.status_code == 200
    photo_url = uploaded.json()["photo_url"]
    assert photo_url.endswith(f"/f/review-photos/{review.pk}/")
    review_moderate(review=review, publish=True)
    listed = client.get("/api/v1/reviews?product_id=P1",
                        headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["items"][0]["photo_url"] == photo_url
    missing = client.post("/api/v1/reviews/999999/photo",
                          {"photo": SimpleUploadedFile("x.png", png())},
                          headers={**headers, "Idempotency-Key": "p2"})
    assert missing.status_code == 404


def test_a_retried_upload_with_its_idempotency_key_replays_and_never_replaces_a_later_photo(
    sara: Customer, bought: Product
) -> None:
    review = review_submit(customer=sara, product=bought, stars=5)
    key = apikey_create(name="shop")[1]
    auth = {"Authorization": f"Bearer {key}"}
    client = Client()
    url = f"/api/v1/reviews/{review.pk}/photo"

    def upload(content: bytes, idempotency_key: str) -> Any:
        return client.post(url, {"photo": SimpleUploadedFile("p.webp", content)},
                           headers={**auth, "Idempotency-Key": idempotency_key})

    first_photo, second_photo = WEBP_HEAD + b"\x01" * 20, WEBP_HEAD + b"\x02" * 20
    first = upload(first_photo, "u1")
    assert first.status_code == 200
    assert upload(second_photo, "u2").status_code == 200
    review.refresh_from_db()
    stored = review.photo.name

    # The client lost the first answer and retries it (a new multipart boundary, same file).
    retried = upload(first_photo, "u1")
    assert retried.status_code == 200 and retried.json() == first.json()
    assert retried.headers["Idempotent-Replayed"] == "true"
    review.refresh_from_db()
    assert review.photo.name == stored  # the later photo stays

    reused = upload(second_photo, "u1")  # the same key for another file
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_a_replaced_photo_is_deleted_only_when_the_replacement_commits(
    sara: Customer, bought: Product, media: Path, django_capture_on_commit_callbacks: Any
) -> None:
    review = review_submit(customer=sara, product=bought, stars=5)
    with django_capture_on_commit_callbacks(execute=True):
        review_photo_set(review=review, photo=SimpleUploadedFile("a.png", png()))
    first = review.photo.name
    storage = review.photo.storage

    with pytest.raises(RuntimeError), transaction.atomic():  # the write is rolled back
        review_photo_set(review=review, photo=SimpleUploadedFile("b.png", png()))
        raise RuntimeError
    assert storage.exists(first)  # the review (rolled back to it) still finds its file

    review.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        review_photo_set(review=review, photo=SimpleUploadedFile("c.png", png()))
    assert not storage.exists(first) and storage.exists(review.photo.name)
