"""Persian/Arabic text made comparable, and what each score band talks about."""

from __future__ import annotations

import pytest

from tests.feedback.conftest import invite
from vafa.customers.models import Customer
from vafa.feedback.selectors import score_band, text_terms_by_band
from vafa.feedback.services import response_complete, response_score_record
from vafa.feedback.text import bigrams, normalize_feedback_text, tokens


@pytest.mark.parametrize(("raw", "expected"), [
    ("علي كريمي", "علی کریمی"),                      # Arabic yeh/kaf → Persian
    ("می\u200cخواهم", "میخواهم"),                     # ZWNJ removed: one spelling per word
    ("مُحَمَّد", "محمد"),                               # harakat dropped
    ("خيـــلي", "خیلی"),                               # tatweel dropped
    ("سفارش ۱۲ و ٣٤", "سفارش 12 و 34"),                # Persian and Arabic-Indic digits
    ("أحمد إلى آخر", "احمد الی اخر"),                  # alef variants unified
    ("  Late   DELIVERY\u200f ", "late delivery"),      # spaces, bidi marks, case
])
def test_it_normalises_persian_arabic_and_english_text(raw: str, expected: str) -> None:
    assert normalize_feedback_text(raw) == expected


def test_it_drops_stopwords_numbers_and_single_letters_from_tokens() -> None:
    text = normalize_feedback_text("ارسال خیلی دیر بود و بسته ۲ روز در راه بود a")
    assert tokens(text) == ["ارسال", "دیر", "بسته", "روز", "راه"]
    assert list(bigrams(["late", "delivery", "again"])) == ["late delivery", "delivery again"]


@pytest.mark.parametrize(("kind", "score", "band"), [
    ("nps", 0, "detractor"), ("nps", 6, "detractor"), ("nps", 7, "passive"),
    ("nps", 8, "passive"), ("nps", 9, "promoter"), ("nps", 10, "promoter"),
    ("csat", 2, "detractor"), ("csat", 3, "passive"), ("csat", 4, "promoter"),
])
def test_it_puts_each_score_in_its_band(kind: str, score: int, band: str) -> None:
    assert score_band(kind, score) == band


def test_it_counts_terms_and_phrases_per_band_once_per_response(db: None) -> None:
    comments = [
        (3, "ارسال دير بود، ارسال دير!"),        # Arabic yeh: still the same word as «دیر»
        (5, "ارسال دیر و پشتیبانی ضعیف"),
        (2, "پشتیبانی ضعيف بود"),
        (8, "good price"),
        (10, "Great support, great price"),
        (9, "great support"),
    ]
    for n, (score, text) in enumerate(comments):
        customer = Customer.objects.create(external_id=f"T{n}")
        invitation = invite(customer)
        response_score_record(invitation=invitation, score=score)
        response_complete(invitation=invitation, data={"reason": text})
    bands = text_terms_by_band(kind="nps")
    assert bands["detractor"].responses == 3
    assert bands["detractor"].terms[:3] == [("ارسال", 2), ("دیر", 2), ("ضعیف", 2)]
    assert ("ارسال دیر", 2) in bands["detractor"].bigrams
    assert ("پشتیبانی ضعیف", 2) in bands["detractor"].bigrams
    assert bands["passive"].terms == [("good", 1), ("price", 1)]
    assert bands["promoter"].terms[:2] == [("great", 2), ("support", 2)]
    assert bands["promoter"].bigrams[0] == ("great support", 2)
