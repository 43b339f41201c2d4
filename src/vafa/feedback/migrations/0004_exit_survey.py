"""The built-in exit survey ("why did you leave?"), in Persian, Arabic and English.

Sent on unsubscribe, account deletion and to customers who stopped buying; the reason codes
are stable so that the churn-factors view can count them.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

REASONS = [
    ("price", "قیمت‌ها بالا بود", "الأسعار مرتفعة", "Prices were too high"),
    ("quality", "کیفیت کالا خوب نبود", "جودة المنتجات لم تكن جيدة", "Product quality"),
    ("delivery", "ارسال کند یا مشکل‌دار بود", "التوصيل بطيء أو فيه مشاكل",
     "Slow or problematic delivery"),
    ("service", "پشتیبانی خوب نبود", "خدمة العملاء لم تكن جيدة", "Customer service"),
    ("elsewhere", "فروشگاه بهتری پیدا کردم", "وجدت متجرًا أفضل", "I found a better shop"),
    ("no_need", "دیگر به این کالاها نیاز ندارم", "لم أعد بحاجة إلى هذه المنتجات",
     "I no longer need these products"),
    ("messages", "پیام‌ها زیاد بود", "الرسائل كثيرة جدًا", "Too many messages"),
    ("other", "دلیل دیگر", "سبب آخر", "Something else"),
]

EXIT = {
    "slug": "exit",
    "kind": "custom",
    "title": {"fa": "دلتان برایمان تنگ می‌شود", "ar": "سنفتقدك",
              "en": "We are sorry to see you go"},
    "questions": [
        {
            "id": "reason", "type": "choice", "required": True,
            "label": {"fa": "مهم‌ترین دلیل رفتنتان چه بود؟", "ar": "ما السبب الرئيسي لمغادرتك؟",
                      "en": "What is the main reason you left?"},
            "choices": [
                {"value": code, "label": {"fa": fa, "ar": ar, "en": en}}
                for code, fa, ar, en in REASONS
            ],
        },
        {
            "id": "detail", "type": "text", "required": False,
            "label": {"fa": "چه کاری می‌توانستیم بهتر انجام دهیم؟",
                      "ar": "ما الذي كان بإمكاننا فعله بشكل أفضل؟",
                      "en": "What could we have done better?"},
        },
    ],
}


def create(apps: Any, schema_editor: Any) -> None:
    apps.get_model("feedback", "Survey").objects.get_or_create(
        slug=EXIT["slug"], defaults={**EXIT, "active": True}
    )


def remove(apps: Any, schema_editor: Any) -> None:
    apps.get_model("feedback", "Survey").objects.filter(slug="exit", invitations=None).delete()


class Migration(migrations.Migration):
    dependencies = [("feedback", "0003_exits_and_reviews")]
    operations = [migrations.RunPython(create, remove)]
