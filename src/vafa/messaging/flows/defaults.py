"""The flows and templates a new shop starts with: every lifecycle flow, with email and SMS
templates in Persian, Arabic and English. Welcome, order thank-you and the shipping updates are
on; the rest wait for the merchant to switch them on.

`flows_install_defaults` is idempotent and never overwrites what the merchant changed: a flow,
step or template that exists (by key) is left alone. The data migration calls it, and so can
tests and `vafa manage shell`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

MINUTES_PER_DAY = 24 * 60
# Default template keys are namespaced (`flow-welcome`), so a shop's own templates and the
# campaigns' never collide with them.
TEMPLATE_PREFIX = "flow-"


@dataclass(frozen=True)
class Texts:
    """One message in one language: email subject, email body (HTML fragment, Jinja2), SMS."""

    subject: str
    html: str
    sms: str


@dataclass(frozen=True)
class FlowDefault:
    key: str
    name: str
    trigger: str
    kind: str
    enabled: bool
    reentry: str
    topic: str = ""
    conditions: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    # (delay in minutes, template key)
    steps: tuple[tuple[int, str], ...] = ()


T, M = "transactional", "marketing"

FLOWS: tuple[FlowDefault, ...] = (
    FlowDefault("welcome", "Welcome", "signup", M, True, "never", "news",
                steps=((0, "welcome"),)),
    FlowDefault("onboarding", "Onboarding", "signup", M, False, "never", "news",
                conditions={"within_days_of_entry": 30},
                steps=((2 * MINUTES_PER_DAY, "onboarding-1"), (5 * MINUTES_PER_DAY,
                                                                "onboarding-2"))),
    FlowDefault("order-thank-you", "Order thank-you", "order_placed", T, True, "always",
                conditions={"order_kept": True, "order_recent_days": 7},
                steps=((0, "order-thank-you"),)),
    FlowDefault("order-shipped", "Order shipped", "order_shipped", T, True, "always",
                conditions={"order_kept": True, "order_recent_days": 60},
                steps=((0, "order-shipped"),)),
    FlowDefault("order-delivered", "Order delivered", "order_delivered", T, True, "always",
                conditions={"order_kept": True, "order_recent_days": 60},
                steps=((0, "order-delivered"),)),
    FlowDefault("help-after-delivery", "Help after delivery", "order_delivered", M, False,
                "always", "news", conditions={"order_kept": True},
                steps=((2 * MINUTES_PER_DAY, "help-after-delivery"),)),
    FlowDefault("review-request", "Review request", "order_delivered", M, False, "always",
                "feedback", conditions={"order_kept": True},
                steps=((7 * MINUTES_PER_DAY, "review-request"),)),
    FlowDefault("birthday", "Birthday", "birthday", M, False, "always", "offers",
                conditions={"within_days_of_entry": 1}, steps=((0, "birthday"),)),
    FlowDefault("win-back", "Win-back", "overdue", M, False, "after_exit", "offers",
                conditions={"no_order_since_entry": True},
                params={"overdue_factor": 2.5, "single_order_days": 120, "p_alive_below": 0.3},
                steps=((0, "win-back-1"), (7 * MINUTES_PER_DAY, "win-back-2"))),
    FlowDefault("at-risk", "At-risk outreach", "at_risk", M, False, "after_exit", "offers",
                conditions={"no_order_since_entry": True}, params={"lookback_days": 2},
                steps=((0, "at-risk"),)),
    FlowDefault("tier-up", "Tier up", "tier_up", M, False, "always", "loyalty",
                steps=((0, "tier-up"),)),
    FlowDefault("points-expiring", "Points expiring", "points_expiring", M, False, "always",
                "loyalty", steps=((0, "points-expiring"),)),
    FlowDefault("reward-available", "Reward available", "reward_available", M, False, "always",
                "loyalty", steps=((0, "reward-available"),)),
    FlowDefault("survey-invitation", "Survey invitation", "survey_due", M, False, "always",
                "feedback", steps=((0, "survey-invitation"),)),
    FlowDefault("apology", "Apology to unhappy customers", "detractor", M, False, "always",
                "feedback", steps=((0, "apology"),)),
    FlowDefault("promoter-ask", "Review or referral ask to promoters", "promoter", M, False,
                "always", "feedback", steps=((0, "promoter-ask"),)),
)

# Shared pieces of the email bodies.
_LINES = {
    "fa": ("کالا", "تعداد", "مبلغ", "جمع کل"),
    "ar": ("المنتج", "الكمية", "المبلغ", "المجموع"),
    "en": ("Product", "Qty", "Amount", "Total"),
}


def _lines_table(language: str) -> str:
    product, quantity, amount, total = _LINES[language]
    return (
        '<table class="lines" style="width:100%;border-collapse:collapse">'
        f"<tr><th>{product}</th><th>{quantity}</th><th>{amount}</th></tr>"
        "{% for line in order.lines %}<tr><td>{{ line.product }}</td>"
        "<td>{{ line.quantity }}</td><td>{{ line.total }}</td></tr>{% endfor %}"
        f"<tr><th>{total}</th><td></td><th>{{{{ order.total }}}}</th></tr></table>"
    )


def _p(text: str) -> str:
    return f"<p>{text}</p>"


TEMPLATES: dict[str, dict[str, Texts]] = {
    "welcome": {
        "fa": Texts("خوش آمدید {{ customer.first_name }}!",
                    _p("{{ customer.first_name }} عزیز، از پیوستن شما خوشحالیم. "
                       "تازه‌ها و پیشنهادهای ویژه را برایتان می‌فرستیم."),
                    "{{ customer.first_name }} عزیز، خوش آمدید!"),
        "ar": Texts("أهلاً بك {{ customer.first_name }}!",
                    _p("عزيزنا {{ customer.first_name }}، يسعدنا انضمامك إلينا. "
                       "سنرسل لك الجديد والعروض الخاصة."),
                    "أهلاً بك {{ customer.first_name }}!"),
        "en": Texts("Welcome, {{ customer.first_name }}!",
                    _p("Hi {{ customer.first_name }}, we are glad you joined us. "
                       "We will send you what is new and our best offers."),
                    "Welcome, {{ customer.first_name }}!"),
    },
    "onboarding-1": {
        "fa": Texts("چطور بیشترین بهره را ببرید",
                    _p("{{ customer.first_name }} عزیز، با عضویت در باشگاه مشتریان از هر خرید "
                       "امتیاز می‌گیرید."),
                    "از هر خرید امتیاز بگیرید؛ به باشگاه مشتریان بپیوندید."),
        "ar": Texts("كيف تستفيد أكثر",
                    _p("عزيزنا {{ customer.first_name }}، انضم إلى نادي العملاء واكسب نقاطاً "
                       "مع كل عملية شراء."),
                    "اكسب نقاطاً مع كل عملية شراء في نادي العملاء."),
        "en": Texts("Getting the most out of your account",
                    _p("Hi {{ customer.first_name }}, join our loyalty club and earn points on "
                       "every order."),
                    "Earn points on every order: join our loyalty club."),
    },
    "onboarding-2": {
        "fa": Texts("پرطرفدارترین‌های این ماه",
                    _p("{{ customer.first_name }} عزیز، نگاهی به محبوب‌ترین کالاهای این ماه "
                       "بیندازید."),
                    "محبوب‌ترین کالاهای این ماه را ببینید."),
        "ar": Texts("الأكثر طلباً هذا الشهر",
                    _p("عزيزنا {{ customer.first_name }}، ألقِ نظرة على المنتجات الأكثر طلباً "
                       "هذا الشهر."),
                    "اطّلع على المنتجات الأكثر طلباً هذا الشهر."),
        "en": Texts("This month's favourites",
                    _p("Hi {{ customer.first_name }}, have a look at what customers loved most "
                       "this month."),
                    "See this month's most loved products."),
    },
    "order-thank-you": {
        "fa": Texts("از خرید شما سپاسگزاریم (سفارش {{ order.id }})",
                    _p("{{ customer.first_name }} عزیز، سفارش شما ثبت شد.") + "{LINES}",
                    "سفارش {{ order.id }} ثبت شد. مبلغ: {{ order.total }}. سپاس از خرید شما."),
        "ar": Texts("شكراً لطلبك (الطلب {{ order.id }})",
                    _p("عزيزنا {{ customer.first_name }}، تم تسجيل طلبك.") + "{LINES}",
                    "تم تسجيل الطلب {{ order.id }}. المبلغ: {{ order.total }}. شكراً لك."),
        "en": Texts("Thank you for your order ({{ order.id }})",
                    _p("Hi {{ customer.first_name }}, we have received your order.") + "{LINES}",
                    "Order {{ order.id }} received, total {{ order.total }}. Thank you!"),
    },
    "order-shipped": {
        "fa": Texts("سفارش {{ order.id }} ارسال شد",
                    _p("{{ customer.first_name }} عزیز، سفارش {{ order.id }} ارسال شد و به‌زودی "
                       "به دستتان می‌رسد."),
                    "سفارش {{ order.id }} ارسال شد و به‌زودی می‌رسد."),
        "ar": Texts("تم شحن الطلب {{ order.id }}",
                    _p("عزيزنا {{ customer.first_name }}، تم شحن طلبك {{ order.id }} وسيصلك "
                       "قريباً."),
                    "تم شحن الطلب {{ order.id }} وسيصلك قريباً."),
        "en": Texts("Your order {{ order.id }} is on its way",
                    _p("Hi {{ customer.first_name }}, your order {{ order.id }} has shipped and "
                       "will reach you soon."),
                    "Your order {{ order.id }} has shipped."),
    },
    "order-delivered": {
        "fa": Texts("سفارش {{ order.id }} تحویل شد",
                    _p("{{ customer.first_name }} عزیز، سفارش {{ order.id }} تحویل شد. "
                       "امیدواریم از آن لذت ببرید."),
                    "سفارش {{ order.id }} تحویل شد."),
        "ar": Texts("تم تسليم الطلب {{ order.id }}",
                    _p("عزيزنا {{ customer.first_name }}، تم تسليم طلبك {{ order.id }}. "
                       "نتمنى أن ينال إعجابك."),
                    "تم تسليم الطلب {{ order.id }}."),
        "en": Texts("Your order {{ order.id }} was delivered",
                    _p("Hi {{ customer.first_name }}, your order {{ order.id }} was delivered. "
                       "We hope you enjoy it."),
                    "Your order {{ order.id }} was delivered."),
    },
    "help-after-delivery": {
        "fa": Texts("راهنمای استفاده از خرید شما",
                    _p("{{ customer.first_name }} عزیز، نکته‌ها و راهنمای "
                       "{{ order.categories|join('، ') }} را برایتان آماده کرده‌ایم."),
                    "راهنمای استفاده از خریدتان آماده است."),
        "ar": Texts("دليل استخدام مشترياتك",
                    _p("عزيزنا {{ customer.first_name }}، أعددنا لك نصائح وإرشادات حول "
                       "{{ order.categories|join('، ') }}."),
                    "دليل استخدام مشترياتك جاهز."),
        "en": Texts("Getting started with your purchase",
                    _p("Hi {{ customer.first_name }}, here are tips and guides for "
                       "{{ order.categories|join(', ') }}."),
                    "Tips for your new purchase are ready."),
    },
    "review-request": {
        "fa": Texts("نظرتان درباره‌ی خریدتان چیست؟",
                    _p("{{ customer.first_name }} عزیز، با نوشتن نظرتان درباره‌ی سفارش "
                       "{{ order.id }} به دیگران کمک کنید."),
                    "نظرتان درباره‌ی سفارش {{ order.id }} را بنویسید."),
        "ar": Texts("ما رأيك في مشترياتك؟",
                    _p("عزيزنا {{ customer.first_name }}، ساعد الآخرين بكتابة رأيك في الطلب "
                       "{{ order.id }}."),
                    "اكتب رأيك في الطلب {{ order.id }}."),
        "en": Texts("How was your order?",
                    _p("Hi {{ customer.first_name }}, help other shoppers by reviewing order "
                       "{{ order.id }}."),
                    "How was order {{ order.id }}? Leave a review."),
    },
    "birthday": {
        "fa": Texts("تولدتان مبارک {{ customer.first_name }}!",
                    _p("{{ customer.first_name }} عزیز، تولدتان مبارک! هدیه‌ای از "
                       "{{ gift_ideas|join('، ') if gift_ideas else 'کالاهای محبوب' }} "
                       "برایتان کنار گذاشته‌ایم."),
                    "تولدتان مبارک {{ customer.first_name }}! هدیه‌تان منتظر شماست."),
        "ar": Texts("عيد ميلاد سعيد يا {{ customer.first_name }}!",
                    _p("عزيزنا {{ customer.first_name }}، عيد ميلاد سعيد! خصصنا لك هدية من "
                       "{{ gift_ideas|join('، ') if gift_ideas else 'منتجاتنا المفضلة' }}."),
                    "عيد ميلاد سعيد يا {{ customer.first_name }}! هديتك بانتظارك."),
        "en": Texts("Happy birthday, {{ customer.first_name }}!",
                    _p("Happy birthday, {{ customer.first_name }}! We picked a gift for you from "
                       "{{ gift_ideas|join(', ') if gift_ideas else 'our favourites' }}."),
                    "Happy birthday, {{ customer.first_name }}! A gift is waiting for you."),
    },
    "win-back-1": {
        "fa": Texts("دلمان برایتان تنگ شده است",
                    _p("{{ customer.first_name }} عزیز، مدتی است از شما خبری نداریم. "
                       "تازه‌های فروشگاه را ببینید."),
                    "{{ customer.first_name }} عزیز، دلمان برایتان تنگ شده؛ تازه‌ها را ببینید."),
        "ar": Texts("اشتقنا إليك",
                    _p("عزيزنا {{ customer.first_name }}، لم نرك منذ مدة. اطّلع على جديد "
                       "المتجر."),
                    "اشتقنا إليك يا {{ customer.first_name }}! اطّلع على الجديد."),
        "en": Texts("We miss you",
                    _p("Hi {{ customer.first_name }}, it has been a while. Come and see what is "
                       "new."),
                    "We miss you, {{ customer.first_name }}! See what is new."),
    },
    "win-back-2": {
        "fa": Texts("یک پیشنهاد ویژه برای بازگشت شما",
                    _p("{{ customer.first_name }} عزیز، برای خرید بعدی‌تان پیشنهاد ویژه‌ای "
                       "داریم."),
                    "پیشنهاد ویژه برای خرید بعدی شما آماده است."),
        "ar": Texts("عرض خاص لعودتك",
                    _p("عزيزنا {{ customer.first_name }}، لدينا عرض خاص لطلبك القادم."),
                    "عرض خاص لطلبك القادم بانتظارك."),
        "en": Texts("A special offer to welcome you back",
                    _p("Hi {{ customer.first_name }}, we have a special offer for your next "
                       "order."),
                    "A special offer for your next order is waiting."),
    },
    "at-risk": {
        "fa": Texts("شما برای ما مهم هستید",
                    _p("{{ customer.first_name }} عزیز، از همراهی‌تان سپاسگزاریم. اگر چیزی "
                       "باب میلتان نبوده، به ما بگویید."),
                    "{{ customer.first_name }} عزیز، شما برای ما مهم هستید."),
        "ar": Texts("أنت مهم بالنسبة لنا",
                    _p("عزيزنا {{ customer.first_name }}، شكراً لوفائك. إن لم يعجبك شيء "
                       "فأخبرنا."),
                    "أنت مهم بالنسبة لنا يا {{ customer.first_name }}."),
        "en": Texts("You matter to us",
                    _p("Hi {{ customer.first_name }}, thank you for being with us. If something "
                       "was not right, tell us."),
                    "You matter to us, {{ customer.first_name }}."),
    },
    "tier-up": {
        "fa": Texts("به سطح {{ tier_name }} رسیدید!",
                    _p("تبریک {{ customer.first_name }}! اکنون عضو سطح {{ tier_name }} هستید."),
                    "تبریک! به سطح {{ tier_name }} رسیدید."),
        "ar": Texts("وصلت إلى مستوى {{ tier_name }}!",
                    _p("مبروك يا {{ customer.first_name }}! أنت الآن في مستوى {{ tier_name }}."),
                    "مبروك! وصلت إلى مستوى {{ tier_name }}."),
        "en": Texts("You reached {{ tier_name }}!",
                    _p("Congratulations, {{ customer.first_name }}! You are now a "
                       "{{ tier_name }} member."),
                    "Congratulations! You reached {{ tier_name }}."),
    },
    "points-expiring": {
        "fa": Texts("امتیازهایتان به‌زودی منقضی می‌شود",
                    _p("{{ customer.first_name }} عزیز، {{ expiring_points }} امتیاز شما "
                       "به‌زودی منقضی می‌شود. پیش از آن استفاده‌شان کنید."),
                    "{{ expiring_points }} امتیاز شما به‌زودی منقضی می‌شود."),
        "ar": Texts("نقاطك ستنتهي قريباً",
                    _p("عزيزنا {{ customer.first_name }}، {{ expiring_points }} من نقاطك ستنتهي "
                       "قريباً. استخدمها قبل ذلك."),
                    "{{ expiring_points }} من نقاطك ستنتهي قريباً."),
        "en": Texts("Your points expire soon",
                    _p("Hi {{ customer.first_name }}, {{ expiring_points }} of your points "
                       "expire soon. Use them before they go."),
                    "{{ expiring_points }} of your points expire soon."),
    },
    "reward-available": {
        "fa": Texts("یک جایزه در انتظار شماست",
                    _p("{{ customer.first_name }} عزیز، با {{ available_points }} امتیاز "
                       "می‌توانید جایزه بگیرید."),
                    "با {{ available_points }} امتیاز می‌توانید جایزه بگیرید."),
        "ar": Texts("مكافأة بانتظارك",
                    _p("عزيزنا {{ customer.first_name }}، لديك {{ available_points }} نقطة "
                       "تكفي للحصول على مكافأة."),
                    "لديك {{ available_points }} نقطة تكفي لمكافأة."),
        "en": Texts("A reward is waiting for you",
                    _p("Hi {{ customer.first_name }}, your {{ available_points }} points are "
                       "enough for a reward."),
                    "Your {{ available_points }} points are enough for a reward."),
    },
    "survey-invitation": {
        lang: Texts("{{ invitation.subject }}", "{{ invitation.html }}",
                    "{{ invitation.subject }} {{ invitation.url }}")
        for lang in ("fa", "ar", "en")
    },
    "apology": {
        "fa": Texts("از تجربه‌ی شما متأسفیم",
                    _p("{{ customer.first_name }} عزیز، متأسفیم که تجربه‌ی خوبی نداشتید. "
                       "همکاران ما به‌زودی با شما تماس می‌گیرند."),
                    "از تجربه‌ی شما متأسفیم؛ به‌زودی با شما تماس می‌گیریم."),
        "ar": Texts("نعتذر عن تجربتك",
                    _p("عزيزنا {{ customer.first_name }}، نأسف لأن تجربتك لم تكن جيدة. "
                       "سيتواصل معك فريقنا قريباً."),
                    "نعتذر عن تجربتك؛ سنتواصل معك قريباً."),
        "en": Texts("We are sorry",
                    _p("Hi {{ customer.first_name }}, we are sorry your experience was not "
                       "good. Our team will contact you soon."),
                    "We are sorry; our team will contact you soon."),
    },
    "promoter-ask": {
        "fa": Texts("از لطف شما سپاسگزاریم",
                    _p("{{ customer.first_name }} عزیز، خوشحالیم که از ما راضی هستید. "
                       "با نوشتن نظر یا معرفی ما به دوستانتان کمکمان کنید."),
                    "سپاس! ما را به دوستانتان معرفی کنید."),
        "ar": Texts("شكراً لثقتك",
                    _p("عزيزنا {{ customer.first_name }}، يسعدنا رضاك. ساعدنا بكتابة رأيك أو "
                       "بدعوة أصدقائك."),
                    "شكراً! ادعُ أصدقاءك إلينا."),
        "en": Texts("Thank you for the kind words",
                    _p("Hi {{ customer.first_name }}, we are glad you are happy with us. Help us "
                       "with a review or by inviting a friend."),
                    "Thank you! Invite a friend to join us."),
    },
}


def flows_install_defaults(*, now: datetime, apps: Any = None) -> int:
    """Create the default flows, steps and templates that do not exist yet; returns how many
    rows were created. `apps` is the migration's app registry (None: the real models)."""
    if apps is None:
        from django.apps import apps as registry

        apps = registry
    flows: Any = apps.get_model("flows", "Flow")
    steps: Any = apps.get_model("flows", "FlowStep")
    templates: Any = apps.get_model("messaging", "MessageTemplate")
    created = 0
    with transaction.atomic():
        for default in FLOWS:
            flow, made = flows.objects.get_or_create(
                key=default.key,
                defaults={
                    "name": default.name, "trigger": default.trigger, "kind": default.kind,
                    "topic": default.topic, "enabled": default.enabled,
                    "reentry": default.reentry, "conditions": default.conditions,
                    "params": default.params, "channels": ["email", "sms"],
                    "updated_at": now,
                },
            )
            created += made
            if made:
                for position, (delay, template_key) in enumerate(default.steps):
                    steps.objects.create(flow=flow, position=position, delay_minutes=delay,
                                         template_key=TEMPLATE_PREFIX + template_key)
                    created += 1
        for key, languages in TEMPLATES.items():
            for language, texts in languages.items():
                html = texts.html.replace("{LINES}", _lines_table(language))
                for channel, parts in (
                    # An empty text part: the outbox derives it from the HTML.
                    ("email", {"subject": texts.subject, "body_html": html, "body_text": ""}),
                    ("sms", {"subject": "", "body_html": "", "body_text": texts.sms}),
                ):
                    _, made = templates.objects.get_or_create(
                        key=TEMPLATE_PREFIX + key, channel=channel, language=language,
                        defaults=parts,
                    )
                    created += made
    return created
