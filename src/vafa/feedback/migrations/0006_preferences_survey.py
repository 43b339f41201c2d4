"""The built-in preferences survey ("tell us what you like"), in Persian, Arabic and English.

Its three questions are marked with the profile field they fill, so a completed survey lands on
the customer's `CustomerPreference`: interests (topic codes; merchants may edit the choices in
the admin to match their catalogue), the preferred reward and the preferred channel. Never
overwrites an existing survey with the same slug.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

INTERESTS = [
    ("fashion", "پوشاک و مد", "الأزياء والملابس", "Fashion and clothing"),
    ("beauty", "آرایشی و بهداشتی", "الجمال والعناية", "Beauty and care"),
    ("home", "خانه و آشپزخانه", "المنزل والمطبخ", "Home and kitchen"),
    ("electronics", "کالای دیجیتال", "الإلكترونيات", "Electronics"),
    ("books", "کتاب و لوازم‌التحریر", "الكتب والقرطاسية", "Books and stationery"),
    ("sports", "ورزش و سفر", "الرياضة والسفر", "Sports and travel"),
    ("kids", "کودک و نوزاد", "الأطفال والرضع", "Kids and babies"),
    ("food", "خوراکی و نوشیدنی", "الأطعمة والمشروبات", "Food and drinks"),
]
REWARDS = [
    ("points", "امتیاز برای خریدهای بعدی", "نقاط لمشترياتك القادمة", "Points for later purchases"),
    ("discount", "کد تخفیف", "رمز خصم", "A discount code"),
    ("free_shipping", "ارسال رایگان", "شحن مجاني", "Free shipping"),
    ("gift", "هدیه", "هدية", "A gift"),
]
CHANNELS = [
    ("email", "ایمیل", "البريد الإلكتروني", "Email"),
    ("sms", "پیامک", "رسالة نصية", "SMS"),
    ("telegram", "تلگرام", "تيليجرام", "Telegram"),
    ("push", "اعلان مرورگر", "إشعارات المتصفح", "Browser notifications"),
]


def _choices(rows: list[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    return [{"value": code, "label": {"fa": fa, "ar": ar, "en": en}} for code, fa, ar, en in rows]


PREFERENCES = {
    "slug": "preferences",
    "kind": "custom",
    "title": {"fa": "از علاقه‌مندی‌هایتان بگویید", "ar": "أخبرنا بما تحب",
              "en": "Tell us what you like"},
    "questions": [
        {
            "id": "interests", "type": "multi", "required": False, "profile": "interests",
            "label": {"fa": "به چه چیزهایی علاقه دارید؟", "ar": "ما الذي يهمك؟",
                      "en": "What are you interested in?"},
            "choices": _choices(INTERESTS),
        },
        {
            "id": "reward_type", "type": "choice", "required": False, "profile": "reward_type",
            "label": {"fa": "کدام پاداش را بیشتر دوست دارید؟",
                      "ar": "أي مكافأة تفضّل؟",
                      "en": "Which reward do you like best?"},
            "choices": _choices(REWARDS),
        },
        {
            "id": "channel", "type": "choice", "required": False, "profile": "channel",
            "label": {"fa": "ترجیح می‌دهید از چه راهی با شما در ارتباط باشیم؟",
                      "ar": "كيف تفضّل أن نتواصل معك؟",
                      "en": "How would you like to hear from us?"},
            "choices": _choices(CHANNELS),
        },
    ],
}


def create(apps: Any, schema_editor: Any) -> None:
    apps.get_model("feedback", "Survey").objects.get_or_create(
        slug=PREFERENCES["slug"], defaults={**PREFERENCES, "active": True}
    )


def remove(apps: Any, schema_editor: Any) -> None:
    apps.get_model("feedback", "Survey").objects.filter(
        slug="preferences", invitations=None
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("feedback", "0005_preferences_and_review_photos")]
    operations = [migrations.RunPython(create, remove)]
