"""Free-text answers made comparable: one spelling per word in Persian, Arabic and English.

Builds on `vafa.core.text` (digits, yeh/kaf) and goes further, because here we compare words, not
names: diacritics (harakat) and tatweel are dropped, alef variants unified, ZWNJ removed (people
type «می‌خواهم» and «میخواهم» for the same word; joining keeps one token), everything case-folded.
The result is for counting and search only; the customer's own text is stored untouched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from itertools import pairwise

from vafa.core.text import normalize_digits

# Harakat, superscript alef, Quranic marks; tatweel.
_DIACRITICS = re.compile("[\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_INVISIBLES = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# One letter per sound: Arabic yeh/kaf/alef-maqsura as Persian, hamza-carrying alefs as alef.
_LETTERS = str.maketrans(
    {"ي": "ی", "ى": "ی", "ك": "ک", "ە": "ه", "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا"}
)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")

STOPWORDS: frozenset[str] = frozenset(
    # English
    "a an and are as at be but by for from had has have i in is it its me my no not of on or "
    "so that the this to too was we were with you your our they them very just".split()
    # Persian (written as normalise() leaves them: no ZWNJ)
    + "و در به از که این آن را با برای است بود هم یا تا من ما شما او اما هست نیست خیلی "
    "بسیار یک می شد شده کرد کردم کنم کنید بر ها های دارد داشت".split()
    # Arabic
    + "و في من على الى عن ان هذا هذه ذلک التی الذی کان کانت مع لا ما هو هی انا نحن لم لن "
    "قد ثم او کل جدا".split()
)
"""A deliberately small list: only words that say nothing about the experience."""


def normalize_feedback_text(text: str) -> str:
    """The comparable form of a comment (see the module docstring)."""
    value = unicodedata.normalize("NFKC", text)
    value = normalize_digits(value)
    value = value.replace("\u200c", "")
    value = _INVISIBLES.sub("", value)
    value = _DIACRITICS.sub("", value)
    value = value.translate(_LETTERS).casefold()
    return _SPACES.sub(" ", value).strip()


def tokens(normalized: str) -> list[str]:
    """Words of an already normalised text, without stopwords, one-letter words or numbers."""
    return [
        word for word in _TOKEN.findall(normalized)
        if len(word) > 1 and not word.isdigit() and word not in STOPWORDS
    ]


def bigrams(words: Iterable[str]) -> Iterator[str]:
    """Adjacent word pairs ("late delivery"), joined by a space."""
    return (f"{a} {b}" for a, b in pairwise(words))
