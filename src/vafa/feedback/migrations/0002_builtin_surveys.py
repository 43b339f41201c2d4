"""The built-in NPS, CSAT and CES surveys, in Persian, Arabic and English.

Each asks its standard headline question (answered with one click in the message) and one
optional open question about the reason. Merchants may edit the wording in the admin; this
migration never overwrites an existing survey with the same slug.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

REASON = {
    "id": "reason",
    "type": "text",
    "required": False,
    "label": {
        "fa": "مهم‌ترین دلیل امتیازتان چیست؟",
        "ar": "ما السبب الرئيسي لتقييمك؟",
        "en": "What is the main reason for your score?",
    },
}

SURVEYS: list[dict[str, Any]] = [
    {
        "slug": "nps",
        "kind": "nps",
        "title": {"fa": "نظر شما برای ما مهم است", "ar": "رأيك يهمنا",
                  "en": "Your opinion matters to us"},
        "prompt": {
            "fa": "چقدر احتمال دارد ما را به دوستان یا آشنایانتان پیشنهاد کنید؟",
            "ar": "ما مدى احتمال أن توصي بنا لصديق أو زميل؟",
            "en": "How likely are you to recommend us to a friend or colleague?",
        },
        "low_label": {"fa": "اصلاً", "ar": "غير محتمل إطلاقًا", "en": "Not at all likely"},
        "high_label": {"fa": "حتماً", "ar": "محتمل جدًا", "en": "Extremely likely"},
    },
    {
        "slug": "csat",
        "kind": "csat",
        "title": {"fa": "تجربهٔ شما چطور بود؟", "ar": "كيف كانت تجربتك؟",
                  "en": "How did we do?"},
        "prompt": {
            "fa": "چقدر از تجربه‌تان با ما راضی بودید؟",
            "ar": "ما مدى رضاك عن تجربتك معنا؟",
            "en": "How satisfied were you with your experience?",
        },
        "low_label": {"fa": "خیلی ناراضی", "ar": "غير راضٍ إطلاقًا", "en": "Very dissatisfied"},
        "high_label": {"fa": "خیلی راضی", "ar": "راضٍ جدًا", "en": "Very satisfied"},
    },
    {
        "slug": "ces",
        "kind": "ces",
        "title": {"fa": "کارتان راحت انجام شد؟", "ar": "هل كان الأمر سهلًا؟",
                  "en": "Was it easy?"},
        "prompt": {
            "fa": "انجام کارتان با ما چقدر آسان بود؟",
            "ar": "ما مدى سهولة إنجاز ما أردته معنا؟",
            "en": "How easy was it to get what you needed from us?",
        },
        "low_label": {"fa": "خیلی سخت", "ar": "صعب جدًا", "en": "Very difficult"},
        "high_label": {"fa": "خیلی آسان", "ar": "سهل جدًا", "en": "Very easy"},
    },
]


def create(apps: Any, schema_editor: Any) -> None:
    survey_model = apps.get_model("feedback", "Survey")
    for spec in SURVEYS:
        survey_model.objects.get_or_create(
            slug=spec["slug"], defaults={**spec, "questions": [REASON], "active": True}
        )


def remove(apps: Any, schema_editor: Any) -> None:
    survey_model = apps.get_model("feedback", "Survey")
    survey_model.objects.filter(slug__in=[s["slug"] for s in SURVEYS], invitations=None).delete()


class Migration(migrations.Migration):
    dependencies = [("feedback", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
