"""Words, digits, dates and money of the standalone HTML report, in Persian, Arabic and English.

`vafa.analytics` is a pure library and cannot use Django's gettext, so the report carries its own
catalogue: `CATALOGUE[key][lang]`. Every key has a non-empty text in each of `LANGS` (a test checks
it). Texts may hold `str.format` fields (`{count}`), filled with values that are already localised.

`Localizer` turns the summary's raw values into what a merchant reads: Persian digits (۰–۹) and
Jalali dates for `fa`, Arabic-Indic digits (٠–٩) and Gregorian dates for `ar`, ASCII digits for
`en`; group and decimal separators per language (`٬` and `٫` for fa and ar, as in CLDR); money with
the currency's word or symbol. Signed numbers in right-to-left text are wrapped in a left-to-right
isolate (U+2066 … U+2069) so that the sign stays beside the digits in any bidi context, including
the SVG text of the charts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import jdatetime

from vafa.analytics.errors import InputError

LANGS: tuple[str, ...] = ("fa", "ar", "en")
RTL_LANGS: frozenset[str] = frozenset({"fa", "ar"})

_DIGITS = {
    "fa": "۰۱۲۳۴۵۶۷۸۹",
    "ar": "٠١٢٣٤٥٦٧٨٩",
    "en": "0123456789",
}
_GROUP = {"fa": "٬", "ar": "٬", "en": ","}
_DECIMAL = {"fa": "٫", "ar": "٫", "en": "."}
_PERCENT = {"fa": "٪", "ar": "٪", "en": "%"}
_MINUS = {"fa": "−", "ar": "−", "en": "-"}
_LRI, _PDI = "\u2066", "\u2069"

_GREGORIAN_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "ar": ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر",
           "أكتوبر", "نوفمبر", "ديسمبر"),
}

# Currency code -> (decimals shown, pattern per language). `{n}` is the localised amount.
CURRENCIES: dict[str, tuple[int, dict[str, str]]] = {
    "USD": (2, {"en": "${n}", "fa": "{n} دلار", "ar": "{n} دولار"}),
    "EUR": (2, {"en": "€{n}", "fa": "{n} یورو", "ar": "{n} يورو"}),
    "GBP": (2, {"en": "£{n}", "fa": "{n} پوند", "ar": "{n} جنيه إسترليني"}),
    "IRT": (0, {"en": "{n} toman", "fa": "{n} تومان", "ar": "{n} تومان"}),
    "IRR": (0, {"en": "{n} rials", "fa": "{n} ریال", "ar": "{n} ريال إيراني"}),
    "AED": (2, {"en": "AED {n}", "fa": "{n} درهم", "ar": "{n} درهم"}),
    "SAR": (2, {"en": "SAR {n}", "fa": "{n} ریال سعودی", "ar": "{n} ريال"}),
    "TRY": (2, {"en": "₺{n}", "fa": "{n} لیر", "ar": "{n} ليرة تركية"}),
}
# The currency's name for axis titles ("AOV (toman)").
CURRENCY_NAMES: dict[str, dict[str, str]] = {
    "USD": {"en": "USD", "fa": "دلار", "ar": "دولار"},
    "EUR": {"en": "EUR", "fa": "یورو", "ar": "يورو"},
    "GBP": {"en": "GBP", "fa": "پوند", "ar": "جنيه إسترليني"},
    "IRT": {"en": "toman", "fa": "تومان", "ar": "تومان"},
    "IRR": {"en": "rial", "fa": "ریال", "ar": "ريال إيراني"},
    "AED": {"en": "AED", "fa": "درهم", "ar": "درهم"},
    "SAR": {"en": "SAR", "fa": "ریال سعودی", "ar": "ريال"},
    "TRY": {"en": "TRY", "fa": "لیر", "ar": "ليرة تركية"},
}


def _entry(fa: str, ar: str, en: str) -> dict[str, str]:
    return {"fa": fa, "ar": ar, "en": en}


CATALOGUE: dict[str, dict[str, str]] = {
    # Page and header
    "report_title": _entry("گزارش تحلیل مشتریان", "تقرير تحليل العملاء", "Customer analysis report"),
    "source": _entry("منبع داده", "مصدر البيانات", "Data source"),
    "as_of": _entry("تا تاریخ", "حتى تاريخ", "As of"),
    "first_purchase": _entry("نخستین خرید", "أول عملية شراء", "First purchase"),
    "customers": _entry("مشتریان", "العملاء", "Customers"),
    "transactions": _entry("خریدها", "عمليات الشراء", "Purchases"),
    "revenue": _entry("درآمد", "الإيرادات", "Revenue"),
    "currency": _entry("واحد پول", "العملة", "Currency"),
    "no_currency": _entry("نامشخص", "غير محددة", "not given"),
    "generated_at": _entry("زمان ساخت گزارش", "وقت إنشاء التقرير", "Generated"),
    "utc": _entry("به وقت جهانی", "بالتوقيت العالمي", "UTC"),
    "not_available": _entry("در دسترس نیست", "غير متاح", "Not available"),
    "section_not_available": _entry(
        "این بخش از این داده‌ها قابل محاسبه نبود.",
        "تعذّر حساب هذا القسم من هذه البيانات.",
        "This section could not be computed from this data.",
    ),
    "footer": _entry(
        "ساخته‌شده با وفا، سکوی متن‌باز نگهداشت مشتری. این فایل بدون اینترنت کار می‌کند.",
        "أُنشئ بواسطة وفا، منصة مفتوحة المصدر للاحتفاظ بالعملاء. يعمل هذا الملف دون اتصال بالإنترنت.",
        "Made with Vafa, the open-source customer retention platform. This file works offline.",
    ),
    "contents": _entry("فهرست", "المحتويات", "Contents"),
    # Periods
    "period_day": _entry("روز", "يوم", "day"),
    "period_week": _entry("هفته", "أسبوع", "week"),
    "period_month": _entry("ماه", "شهر", "month"),
    "period_quarter": _entry("فصل", "ربع سنة", "quarter"),
    "period_year": _entry("سال", "سنة", "year"),
    "period_jalali_month": _entry("ماه شمسی", "شهر هجري شمسي", "Solar Hijri month"),
    "period_jalali_season": _entry("فصل", "فصل هجري شمسي", "Solar Hijri season"),
    "period_jalali_year": _entry("سال شمسی", "سنة هجرية شمسية", "Solar Hijri year"),
    "current_vs_previous": _entry(
        "دوره‌ی جاری ({current}) در برابر دوره‌ی پیش ({previous})",
        "الفترة الحالية ({current}) مقارنةً بالفترة السابقة ({previous})",
        "Current period ({current}) against the previous one ({previous})",
    ),
    "headline_period": _entry(
        "واحد دوره: {period}؛ مشتری فعال یعنی خرید در {days} روز گذشته.",
        "وحدة الفترة: {period}؛ العميل النشط هو من اشترى خلال آخر {days} يومًا.",
        "Period: {period}; a customer is active after a purchase in the last {days} days.",
    ),
    "period_range": _entry("{start} تا {end}", "من {start} إلى {end}", "{start} to {end}"),
    "vs_previous": _entry("نسبت به دوره‌ی پیش", "مقارنةً بالفترة السابقة", "vs previous period"),
    "no_previous": _entry("بدون دوره‌ی پیشین", "لا توجد فترة سابقة", "no previous period"),
    "unchanged": _entry("بدون تغییر", "دون تغيير", "unchanged"),
    "pp": _entry("واحد درصد", "نقطة مئوية", "pp"),
    "points": _entry("امتیاز", "نقطة", "points"),
    "days": _entry("روز", "يوم", "days"),
    # Sections
    "sec_kpis": _entry("شاخص‌های کلیدی", "المؤشرات الرئيسية", "Key indicators"),
    "sec_trends": _entry("روند شاخص‌ها", "اتجاه المؤشرات", "Indicator trends"),
    "sec_pareto": _entry("منحنی پارتو", "منحنى باريتو", "Pareto curve"),
    "sec_rfm": _entry("بخش‌بندی RFM", "تقسيم RFM", "RFM segments"),
    "sec_cohorts": _entry("تحلیل هم‌گروه‌ها", "تحليل الأفواج", "Cohort analysis"),
    "sec_clv": _entry("ارزش طول عمر مشتری (CLV)", "القيمة الدائمة للعميل (CLV)",
                      "Customer lifetime value (CLV)"),
    "sec_vip": _entry("مشتریان VIP", "عملاء VIP", "VIP customers"),
    "sec_loyalty": _entry("تشخیص نوع وفاداری", "تشخيص نوع الولاء", "Loyalty diagnosis"),
    "sec_next": _entry("گام‌های بعدی", "الخطوات التالية", "What to do next"),
    # KPI names
    "kpi_retention_rate": _entry("نرخ نگهداشت", "معدل الاحتفاظ", "Retention rate"),
    "kpi_churn_rate": _entry("نرخ ریزش", "معدل فقدان العملاء", "Churn rate"),
    "kpi_repeat_purchase_rate": _entry("نرخ خرید تکراری", "معدل الشراء المتكرر",
                                       "Repeat purchase rate"),
    "kpi_aov": _entry("میانگین ارزش سفارش", "متوسط قيمة الطلب", "Average order value"),
    "kpi_purchase_frequency": _entry("تعداد خرید هر مشتری", "عدد المشتريات لكل عميل",
                                     "Purchases per customer"),
    "kpi_revenue_per_customer": _entry("درآمد هر مشتری", "الإيراد لكل عميل", "Revenue per customer"),
    "kpi_mean_days_between_purchases": _entry("میانگین فاصله‌ی خریدها", "متوسط الفترة بين المشتريات",
                                              "Mean days between purchases"),
    "kpi_median_days_between_purchases": _entry("میانه‌ی فاصله‌ی خریدها",
                                                "وسيط الفترة بين المشتريات",
                                                "Median days between purchases"),
    "kpi_pareto_share": _entry("سهم ۲۰٪ برتر از درآمد", "حصة أفضل ٢٠٪ من الإيرادات",
                               "Revenue share of the top 20%"),
    "kpi_rebuy_rate_after_one": _entry("خرید دوباره پس از یک خرید", "إعادة الشراء بعد شراء واحد",
                                       "Rebuy rate after one purchase"),
    "kpi_rebuy_rate_after_two_plus": _entry("خرید دوباره پس از دو خرید یا بیشتر",
                                            "إعادة الشراء بعد شراءين أو أكثر",
                                            "Rebuy rate after two or more"),
    "kpi_nps": _entry("شاخص خالص ترویج (NPS)", "صافي نقاط الترويج (NPS)", "Net promoter score (NPS)"),
    "kpi_csat": _entry("رضایت مشتری (CSAT)", "رضا العملاء (CSAT)", "Customer satisfaction (CSAT)"),
    "kpi_ces": _entry("سهولت تعامل (CES)", "سهولة التعامل (CES)", "Customer effort score (CES)"),
    "kpi_survey_response_rate": _entry("نرخ پاسخ به نظرسنجی", "معدل الاستجابة للاستبيان",
                                       "Survey response rate"),
    "kpi_revenue": _entry("درآمد دوره", "إيرادات الفترة", "Revenue per period"),
    "kpi_active_customers": _entry("مشتریان فعال", "العملاء النشطون", "Active customers"),
    "kpi_new_customers": _entry("مشتریان جدید", "العملاء الجدد", "New customers"),
    "no_surveys": _entry(
        "نظرسنجی‌ای داده نشده است؛ NPS، CSAT و CES محاسبه نشدند.",
        "لم تُقدَّم استبيانات؛ لم تُحسب مؤشرات NPS وCSAT وCES.",
        "No surveys were given, so NPS, CSAT and CES are not computed.",
    ),
    # Charts
    "chart_retention_churn": _entry("نگهداشت و ریزش", "الاحتفاظ وفقدان العملاء",
                                    "Retention and churn"),
    "chart_aov": _entry("میانگین ارزش سفارش", "متوسط قيمة الطلب", "Average order value"),
    "chart_revenue": _entry("درآمد هر دوره", "الإيرادات في كل فترة", "Revenue per period"),
    "chart_customers": _entry("مشتریان فعال و جدید", "العملاء النشطون والجدد",
                              "Active and new customers"),
    "chart_surveys": _entry("نظرسنجی‌ها", "الاستبيانات", "Surveys"),
    "axis_period_start": _entry("آغاز دوره", "بداية الفترة", "Period start"),
    "axis_percent": _entry("درصد", "النسبة المئوية", "Percent"),
    "axis_customers": _entry("تعداد مشتری", "عدد العملاء", "Customers"),
    "axis_score": _entry("امتیاز", "الدرجة", "Score"),
    "pareto_x": _entry("درصد مشتریان (از پرارزش‌ترین)", "نسبة العملاء (الأعلى قيمة أولًا)",
                       "% of customers (most valuable first)"),
    "pareto_y": _entry("درصد درآمد", "نسبة الإيرادات", "% of revenue"),
    "pareto_equal": _entry("توزیع برابر", "توزيع متساوٍ", "Equal split"),
    "pareto_actual": _entry("سهم انباشته از درآمد", "الحصة التراكمية من الإيرادات",
                            "Cumulative revenue share"),
    "pareto_note": _entry(
        "{share} از درآمد از ۲۰٪ برتر مشتریان می‌آید.",
        "يأتي {share} من الإيرادات من أفضل ٢٠٪ من العملاء.",
        "{share} of revenue comes from the top 20% of customers.",
    ),
    "hover_pareto": _entry("{x} از مشتریان ← {y} از درآمد", "{x} من العملاء ← {y} من الإيرادات",
                           "{x} of customers → {y} of revenue"),
    # RFM
    "segment": _entry("بخش", "الشريحة", "Segment"),
    "count": _entry("تعداد", "العدد", "Count"),
    "share": _entry("سهم از مشتریان", "الحصة من العملاء", "Share of customers"),
    "revenue_share": _entry("سهم از درآمد", "الحصة من الإيرادات", "Share of revenue"),
    "mean_clv": _entry("میانگین ارزش طول عمر", "متوسط القيمة الدائمة", "Mean CLV"),
    "rfm_grid": _entry("تازگی × تکرار خرید", "الحداثة × التكرار", "Recency × frequency"),
    "rfm_r": _entry("امتیاز تازگی خرید", "درجة حداثة الشراء", "Recency score"),
    "rfm_f": _entry("امتیاز تکرار خرید", "درجة تكرار الشراء", "Frequency score"),
    "rfm_grid_note": _entry(
        "امتیاز ۵ یعنی تازه‌ترین یا پرتکرارترین خریدها.",
        "الدرجة ٥ تعني أحدث المشتريات أو أكثرها تكرارًا.",
        "Score 5 means the most recent or most frequent buyers.",
    ),
    "hover_rfm": _entry("تازگی {r}، تکرار {f}: {count} مشتری، درآمد {revenue}",
                        "الحداثة {r}، التكرار {f}: {count} عميل، الإيرادات {revenue}",
                        "Recency {r}, frequency {f}: {count} customers, revenue {revenue}"),
    "seg_champions": _entry("قهرمانان", "الأبطال", "Champions"),
    "seg_loyal": _entry("وفاداران", "الأوفياء", "Loyal"),
    "seg_potential_loyalist": _entry("وفادارانِ بالقوه", "أوفياء محتملون", "Potential loyalists"),
    "seg_new": _entry("مشتریان تازه", "عملاء جدد", "New customers"),
    "seg_promising": _entry("امیدبخش", "واعدون", "Promising"),
    "seg_need_attention": _entry("نیازمند توجه", "يحتاجون إلى اهتمام", "Need attention"),
    "seg_about_to_sleep": _entry("در آستانه‌ی خواب", "على وشك السبات", "About to sleep"),
    "seg_at_risk": _entry("در معرض خطر", "معرّضون للخطر", "At risk"),
    "seg_cant_lose": _entry("نباید از دستشان داد", "لا يمكن خسارتهم", "Can't lose them"),
    "seg_hibernating": _entry("خفته", "في سبات", "Hibernating"),
    "seg_lost": _entry("از دست رفته", "مفقودون", "Lost"),
    # Cohorts
    "cohort": _entry("هم‌گروه (ماه نخستین خرید)", "الفوج (شهر أول شراء)",
                     "Cohort (month of first purchase)"),
    "months_since_first": _entry("ماه پس از نخستین خرید", "الأشهر منذ أول شراء",
                                 "Months since first purchase"),
    "cohort_retention": _entry("نگهداشت هم‌گروه‌ها (درصد مشتریان هم‌گروه که در هر ماه خریدند)",
                               "احتفاظ الأفواج (نسبة عملاء الفوج الذين اشتروا في كل شهر)",
                               "Cohort retention (% of the cohort buying in each month)"),
    "cohort_revenue_retention": _entry("نگهداشت درآمد (درصد درآمد ماه نخست)",
                                       "احتفاظ الإيرادات (نسبة من إيرادات الشهر الأول)",
                                       "Revenue retention (% of month-0 revenue)"),
    "cohort_cumulative": _entry("درآمد انباشته‌ی هر مشتری", "الإيراد التراكمي لكل عميل",
                                "Cumulative revenue per customer"),
    "cohort_label": _entry("{start} ({size} مشتری)", "{start} ({size} عميل)",
                           "{start} ({size} customers)"),
    "hover_cohort": _entry("هم‌گروه {cohort}، ماه {k}: {value}", "الفوج {cohort}، الشهر {k}: {value}",
                           "Cohort {cohort}, month {k}: {value}"),
    # CLV
    "clv_models": _entry("پارامترهای مدل‌ها", "معاملات النماذج", "Model parameters"),
    "clv_time_unit": _entry("واحد زمان مدل‌ها: {unit}", "وحدة الزمن في النماذج: {unit}",
                            "Time unit of the models: {unit}"),
    "clv_calibration": _entry("پایان دوره‌ی برازش: {date}", "نهاية فترة المعايرة: {date}",
                              "End of the calibration period: {date}"),
    "clv_calibration_all": _entry("برازش روی همه‌ی داده‌ها", "المعايرة على كل البيانات",
                                  "Fitted on all the data"),
    "unit_days": _entry("روز", "يوم", "days"),
    "unit_weeks": _entry("هفته", "أسبوع", "weeks"),
    "unit_months": _entry("ماه", "شهر", "months"),
    "parameter": _entry("پارامتر", "المعامل", "Parameter"),
    "estimate": _entry("برآورد", "التقدير", "Estimate"),
    "std_error": _entry("خطای معیار", "الخطأ المعياري", "Std. error"),
    "log_likelihood": _entry("لگاریتم درست‌نمایی", "لوغاريتم الإمكان", "Log-likelihood"),
    "selected_badge": _entry("مدل انتخاب‌شده", "النموذج المختار", "selected"),
    "model_purchase": _entry("مدل خرید", "نموذج الشراء", "Purchase model"),
    "model_spend": _entry("مدل مبلغ خرید", "نموذج قيمة الشراء", "Spend model"),
    "clv_comparison": _entry("مقایسه‌ی مدل‌ها در دوره‌ی آزمون", "مقارنة النماذج في فترة الاختبار",
                             "Model check on the holdout period"),
    "clv_selected": _entry(
        "مدل انتخاب‌شده: {model} (کمترین خطا در دوره‌ی آزمون: {error}).",
        "النموذج المختار: {model} (أقل خطأ في فترة الاختبار: {error}).",
        "Selected model: {model} (lowest holdout error: {error}).",
    ),
    "clv_no_comparison": _entry(
        "مقایسه با دوره‌ی آزمون در دسترس نیست (دوره‌ی جداگانه‌ای برای آزمون نبود)؛ "
        "ارزش‌های پیش‌بینی‌شده را تقریبی بدانید.",
        "المقارنة مع فترة الاختبار غير متاحة (لا توجد فترة اختبار مستقلة)؛ "
        "اعتبر القيم المتوقعة تقريبية.",
        "The holdout check is not available (no separate holdout period); "
        "treat the predicted values as indicative.",
    ),
    "actual": _entry("واقعی", "الفعلي", "Actual"),
    "holdout_error": _entry("خطای آزمون", "خطأ الاختبار", "Holdout error"),
    "model": _entry("مدل", "النموذج", "Model"),
    "cmp_x": _entry("تعداد خرید تکراری در دوره‌ی برازش", "عدد المشتريات المتكررة في فترة المعايرة",
                    "Repeat purchases in the calibration period"),
    "cmp_y": _entry("میانگین خرید در دوره‌ی آزمون", "متوسط المشتريات في فترة الاختبار",
                    "Mean purchases in the holdout period"),
    "hover_cmp": _entry("{series}، {bucket} خرید: {value}", "{series}، {bucket} مشتريات: {value}",
                        "{series}, {bucket} purchases: {value}"),
    "clv_distribution": _entry("توزیع ارزش طول عمر پیش‌بینی‌شده",
                               "توزيع القيمة الدائمة المتوقعة",
                               "Distribution of predicted CLV"),
    "clv_horizon": _entry(
        "افق پیش‌بینی {months} ماه، نرخ تنزیل ماهانه {rate}؛ مجموع ارزش پیش‌بینی‌شده {total}.",
        "أفق التنبؤ {months} شهرًا، معدل الخصم الشهري {rate}؛ مجموع القيمة المتوقعة {total}.",
        "Horizon {months} months, monthly discount rate {rate}; total predicted value {total}.",
    ),
    "clv_range": _entry("بازه‌ی ارزش طول عمر", "نطاق القيمة الدائمة", "CLV range"),
    "hover_hist": _entry("{range}: {count} مشتری", "{range}: {count} عميل", "{range}: {count} customers"),
    "top_customers": _entry("پرارزش‌ترین مشتریان", "العملاء الأعلى قيمة", "Top customers"),
    "rank": _entry("رتبه", "الترتيب", "Rank"),
    "customer_id": _entry("شناسه‌ی مشتری", "معرّف العميل", "Customer ID"),
    "clv": _entry("ارزش طول عمر پیش‌بینی‌شده", "القيمة الدائمة المتوقعة", "Predicted CLV"),
    "p_alive": _entry("احتمال فعال بودن", "احتمال النشاط", "Probability active"),
    "expected_purchases": _entry("خرید مورد انتظار", "المشتريات المتوقعة", "Expected purchases"),
    "ids_verbatim": _entry(
        "شناسه‌ها همان‌گونه که در فایل آمده‌اند نوشته شده‌اند تا بتوان آن‌ها را جست‌وجو کرد.",
        "كُتبت المعرّفات كما وردت في الملف ليسهل البحث عنها.",
        "IDs are shown exactly as in the file so that they can be searched.",
    ),
    # VIP
    "vip_top_share": _entry("سهم برتر", "الشريحة العليا", "Top share"),
    "vip_count": _entry("تعداد VIP", "عدد عملاء VIP", "VIP customers"),
    "vip_min_clv": _entry("کمترین ارزش طول عمر در این گروه", "أدنى قيمة دائمة في المجموعة",
                          "Lowest CLV in the group"),
    "vip_revenue_share": _entry("سهم از درآمد", "الحصة من الإيرادات", "Share of revenue"),
    "vip_ceiling": _entry("سقف هزینه‌ی نگهداشت", "سقف إنفاق الاحتفاظ", "Retention spend ceiling"),
    "vip_ceiling_note": _entry(
        "هزینه‌ی نگهداشت هر مشتری VIP باید زیر {fraction} از ارزش طول عمر پیش‌بینی‌شده‌ی او بماند؛ "
        "برای کم‌ارزش‌ترین VIP یعنی حداکثر {amount}.",
        "يجب أن يبقى إنفاق الاحتفاظ بكل عميل VIP دون {fraction} من قيمته الدائمة المتوقعة؛ "
        "أي {amount} كحدّ أقصى لأدنى عميل VIP قيمةً.",
        "Spend on keeping each VIP should stay below {fraction} of their predicted CLV: "
        "at most {amount} for the least valuable VIP.",
    ),
    # Loyalty
    "loyalty_label": _entry("نوع وفاداری", "نوع الولاء", "Loyalty type"),
    "explanation": _entry("توضیح", "الشرح", "What it means"),
    "loy_habitual": _entry("از روی عادت", "بدافع العادة", "Habitual"),
    "loy_incentive_driven": _entry("وابسته به مشوق", "مدفوع بالحوافز", "Incentive-driven"),
    "loy_price_driven": _entry("قیمت‌محور", "مدفوع بالسعر", "Price-driven"),
    "loy_lapsing": _entry("در حال دور شدن", "في طريقه للانقطاع", "Lapsing"),
    "loy_one_time": _entry("یک‌بار خرید", "اشترى مرة واحدة", "One-time buyer"),
    "loy_regular": _entry("منظم", "منتظم", "Regular"),
    "loyexp_habitual": _entry(
        "در فاصله‌های منظم و بی‌نیاز به تخفیف می‌خرد؛ وفاداری رفتاری پایدار.",
        "يشتري على فترات منتظمة دون حاجة إلى خصم؛ ولاء سلوكي ثابت.",
        "Buys at steady intervals without needing a discount: stable behavioural loyalty.",
    ),
    "loyexp_incentive_driven": _entry(
        "بیشتر سفارش‌هایش با تخفیف یا امتیاز بوده است؛ با حذف مشوق ممکن است برود.",
        "استخدم خصمًا أو نقاطًا في معظم طلباته؛ قد يغادر إذا زال الحافز.",
        "Most of their orders used a discount or points; may leave when the incentive stops.",
    ),
    "loyexp_price_driven": _entry(
        "با تخفیف‌های بزرگ یا در حراج‌ها می‌خرد؛ به قیمت وفادار است، نه به فروشگاه.",
        "يشتري بخصومات كبيرة أو في مواسم التخفيضات؛ ولاؤه للسعر لا للمتجر.",
        "Buys on deep discounts or in sales: loyal to the price rather than to the shop.",
    ),
    "loyexp_lapsing": _entry(
        "پیش‌تر منظم می‌خرید، اما اکنون فاصله‌ی خریدش بسیار بیش از معمول خودش شده است.",
        "كان يشتري بانتظام، لكن الفترة منذ آخر شراء أطول بكثير من عادته.",
        "Used to buy regularly, but the time since the last purchase is far beyond their usual gap.",
    ),
    "loyexp_one_time": _entry(
        "فقط یک بار خریده است؛ خرید دوم مهم‌ترین گام برای نگه داشتن اوست.",
        "اشترى مرة واحدة فقط؛ الشراء الثاني أهم خطوة للاحتفاظ به.",
        "Bought once: a second purchase is the most important step to keep them.",
    ),
    "loyexp_regular": _entry(
        "خریدار تکراری بدون الگوی برجسته‌ی عادت، مشوق یا قیمت.",
        "مشترٍ متكرر دون نمط بارز من العادة أو الحوافز أو السعر.",
        "A repeat buyer with no strong habitual, incentive or price pattern.",
    ),
    # What to do next (rule-based)
    "next_winback": _entry(
        "{at_risk} مشتری «در معرض خطر» و {cant_lose} مشتری «نباید از دستشان داد» پیش‌تر زیاد "
        "می‌خریدند و اکنون مدتی است نخریده‌اند: یک کارزار بازگرداندن شخصی برایشان بفرستید.",
        "{at_risk} عميلًا «معرّضون للخطر» و{cant_lose} عميلًا «لا يمكن خسارتهم» كانوا يشترون كثيرًا "
        "وتوقفوا منذ مدة: أرسل لهم حملة استعادة شخصية.",
        "{at_risk} customers at risk and {cant_lose} you can't lose used to buy often and have "
        "stopped: send them a personal win-back campaign.",
    ),
    "next_vip": _entry(
        "{count} مشتری VIP ({share} برتر) {revenue} از درآمد را می‌سازند: به جای تخفیف، "
        "امتیازهای ویژه بدهید (دسترسی زودتر، هدیه، پشتیبانی اختصاصی) و هزینه‌ی هر نفر را زیر "
        "{fraction} از ارزش طول عمرش نگه دارید.",
        "{count} عميل VIP (أعلى {share}) يحققون {revenue} من الإيرادات: امنحهم مزايا خاصة بدل "
        "الخصومات (وصول مبكر، هدايا، دعم مخصص) وأبقِ الإنفاق على كل منهم دون {fraction} من قيمته الدائمة.",
        "{count} VIPs (the top {share}) bring {revenue} of revenue: give them perks rather than "
        "discounts (early access, gifts, dedicated help) and keep the spend on each below {fraction} "
        "of their CLV.",
    ),
    "next_second_purchase": _entry(
        "فقط {one} از مشتریان یک‌بارخرید دوباره می‌خرند، در برابر {two} پس از دو خرید: "
        "پیام‌های پس از نخستین خرید (تشکر، راهنما، پیشنهاد خرید دوم) بزرگ‌ترین اهرم شماست.",
        "يعود {one} فقط من مشتري المرة الواحدة للشراء، مقابل {two} بعد شراءين: "
        "رسائل ما بعد الشراء الأول (شكر، إرشاد، عرض للشراء الثاني) هي أقوى أداة لديك.",
        "Only {one} of one-time buyers buy again, against {two} after two purchases: "
        "the messages after a first purchase (thanks, help, a second-order offer) are your biggest lever.",
    ),
    "next_churn_up": _entry(
        "نرخ ریزش نسبت به دوره‌ی پیش {delta} بالا رفته است: علت را در مشتریان از دست رفته‌ی "
        "همین دوره بجویید و نظرسنجی خروج بفرستید.",
        "ارتفع معدل فقدان العملاء {delta} عن الفترة السابقة: ابحث عن السبب لدى من فُقدوا في هذه "
        "الفترة وأرسل استبيان مغادرة.",
        "Churn rose {delta} against the previous period: look for the cause among the customers "
        "lost this period and send an exit survey.",
    ),
    "next_newcomers": _entry(
        "{count} مشتری تازه یا امیدبخش دارید: یک مجموعه پیام خوشامد و آشنایی برایشان راه بیندازید.",
        "لديك {count} عميلًا جديدًا أو واعدًا: أطلق لهم سلسلة رسائل ترحيب وتعريف.",
        "{count} customers are new or promising: start a welcome and onboarding sequence for them.",
    ),
    "next_dormant": _entry(
        "{share} از مشتریان خفته یا از دست رفته‌اند: فقط با پیام‌های کم‌هزینه سراغشان بروید و "
        "بودجه را خرج گروه‌های ارزشمندتر کنید.",
        "{share} من العملاء في سبات أو مفقودون: تواصل معهم برسائل منخفضة التكلفة فقط "
        "ووجّه الميزانية إلى الشرائح الأعلى قيمة.",
        "{share} of customers are hibernating or lost: reach them only with low-cost messages and "
        "spend the budget on the more valuable segments.",
    ),
    "next_price": _entry(
        "{share} از مشتریان قیمت‌محور یا وابسته به مشوق‌اند: تخفیف همگانی را محدود کنید و "
        "قدردانی و پاداش غیرنقدی را بیازمایید.",
        "{share} من العملاء مدفوعون بالسعر أو بالحوافز: قلّل الخصومات العامة "
        "وجرّب التقدير والمكافآت غير النقدية.",
        "{share} of customers are price- or incentive-driven: limit blanket discounts and try "
        "recognition and non-cash rewards.",
    ),
    "next_surveys": _entry(
        "داده‌ای از نظرسنجی نیست: با یک نظرسنجی NPS کوتاه بفهمید مشتریان چه چیزی را ارزشمند می‌دانند.",
        "لا توجد بيانات استبيان: اعرف ما يقدّره عملاؤك باستبيان NPS قصير.",
        "There is no survey data: a short NPS survey tells you what customers value.",
    ),
    "next_holdout": _entry(
        "ارزش طول عمر بدون دوره‌ی آزمون برآورد شده است: پیش از تصمیم‌های پرهزینه، آن را با "
        "داده‌ی چند ماه بعد بسنجید.",
        "قُدّرت القيمة الدائمة دون فترة اختبار: تحقّق منها ببيانات الأشهر التالية قبل القرارات المكلفة.",
        "CLV was estimated without a holdout check: verify it against the next months' data before "
        "costly decisions.",
    ),
    "next_none": _entry(
        "داده‌ها هشدار ویژه‌ای نشان نمی‌دهند؛ همین شاخص‌ها را دوره به دوره دنبال کنید.",
        "لا تُظهر البيانات تنبيهًا خاصًا؛ تابع هذه المؤشرات فترة بعد فترة.",
        "Nothing in the data calls for a specific action; keep tracking these indicators.",
    ),
    "next_intro": _entry(
        "پیشنهادهای زیر با قاعده‌هایی ساده از همین اعداد ساخته شده‌اند، نه بیشتر.",
        "الاقتراحات التالية مبنية بقواعد بسيطة على هذه الأرقام فقط.",
        "These suggestions follow simple rules from the numbers above, nothing more.",
    ),
}


def translate(key: str, lang: str, **fields: str) -> str:
    """The catalogue text of `key` in `lang`, with `fields` filled in (already localised)."""
    try:
        text = CATALOGUE[key][lang]
    except KeyError as exc:
        raise InputError(f"no translation for {key!r} in {lang!r}") from exc
    return text.format(**fields) if fields else text


def to_decimal(value: object) -> Decimal:
    """Money and numbers arrive as decimal strings, ints or floats; keep strings exact."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise InputError(f"not a number: {value!r}")
    if isinstance(value, int | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise InputError(f"not a number: {value!r}") from exc
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"not a finite number: {value!r}")
        return Decimal(repr(value))
    raise InputError(f"not a number: {value!r}")


def parse_date(value: str) -> dt.date:
    """A `YYYY-MM-DD` date (or `YYYY-MM`, read as its first day) from the summary."""
    text = str(value).strip()
    try:
        if len(text) == 7:
            return dt.date.fromisoformat(text + "-01")
        return dt.date.fromisoformat(text[:10])
    except ValueError as exc:
        raise InputError(f"not a YYYY-MM-DD date: {value!r}") from exc


@dataclass(frozen=True)
class Localizer:
    """Formats the summary's values for one language of the report."""

    lang: str

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise InputError(f"unsupported report language {self.lang!r}; use one of {LANGS}")

    @property
    def rtl(self) -> bool:
        return self.lang in RTL_LANGS

    def t(self, key: str, **fields: str) -> str:
        """The catalogue text of `key`, with already-localised `fields` filled in."""
        return translate(key, self.lang, **fields)

    def digits(self, text: str) -> str:
        """`text` with ASCII digits replaced by this language's digits."""
        if self.lang == "en":
            return text
        return text.translate(str.maketrans("0123456789", _DIGITS[self.lang]))

    def _isolate(self, text: str, signed: bool) -> str:
        # A sign in right-to-left text can drift away from its digits; an LTR isolate pins it.
        return f"{_LRI}{text}{_PDI}" if signed and self.rtl else text

    def number(self, value: object, decimals: int = 0, *, signed: bool = False) -> str:
        """`value` rounded half-up to `decimals`, grouped, in this language's digits.

        `signed=True` writes a plus sign on positive values (for changes).
        """
        amount = to_decimal(value)
        quantum = Decimal(1).scaleb(-decimals)
        rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
        if rounded == 0:
            rounded = abs(rounded)  # no "-0.0"
        body = f"{abs(rounded):,.{decimals}f}"
        body = body.replace(",", "\x00").replace(".", _DECIMAL[self.lang])
        body = self.digits(body.replace("\x00", _GROUP[self.lang]))
        sign = ""
        if rounded < 0:
            sign = _MINUS[self.lang]
        elif signed and rounded > 0:
            sign = "+"
        return self._isolate(sign + body, signed=bool(sign))

    def percent(self, value: object, decimals: int = 1, *, signed: bool = False) -> str:
        """A percentage given on the 0–100 scale, e.g. `42.1` -> `۴۲٫۱٪`."""
        text = self.number(value, decimals, signed=signed)
        if text.endswith(_PDI) and self.lang == "fa":
            # Persian digits are bidi class EN: the sign reads after them, on their right, with
            # or without a plus sign. Arabic-Indic digits (class AN) put it on their left, so in
            # ar the sign stays outside the left-to-right isolate of a signed number.
            return text[:-1] + _PERCENT[self.lang] + _PDI
        return text + _PERCENT[self.lang]

    def fraction(self, value: object, decimals: int = 0) -> str:
        """A fraction on the 0–1 scale as a percentage, e.g. `0.1` -> `10%`."""
        return self.percent(to_decimal(value) * 100, decimals)

    def money(self, value: object, currency: str | None, *, signed: bool = False,
              decimals: int | None = None) -> str:
        """An amount in `currency` (an ISO code, `IRT` for toman, or None for a bare number)."""
        code = (currency or "").upper()
        places, patterns = CURRENCIES.get(code, (2, {}))
        if decimals is not None:
            places = decimals
        amount = to_decimal(value)
        text = self.number(abs(amount), places)
        pattern = patterns.get(self.lang)
        if pattern is None:
            pattern = "{n}" if not code else ("{n} " + code if self.rtl else code + " {n}")
        text = pattern.format(n=text)
        rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if rounded < 0:
            return self._isolate(_MINUS[self.lang] + text, signed=True)
        if signed and rounded > 0:
            return self._isolate("+" + text, signed=True)
        return text

    def currency_name(self, currency: str | None) -> str:
        """The currency's name for axis titles; empty without a currency."""
        if not currency:
            return ""
        return CURRENCY_NAMES.get(currency.upper(), {}).get(self.lang, currency.upper())

    def date(self, value: str) -> str:
        """A `YYYY-MM-DD` date: Jalali `۱۳۷۷/۰۴/۰۹` in fa, `٣٠ يونيو ١٩٩٨` in ar, `30 Jun 1998` in en."""
        day = parse_date(value)
        if self.lang == "fa":
            jalali = jdatetime.date.fromgregorian(date=day)
            return self.digits(f"{jalali.year:04d}/{jalali.month:02d}/{jalali.day:02d}")
        month = _GREGORIAN_MONTHS[self.lang][day.month - 1]
        return self.digits(f"{day.day} {month} {day.year}")

    def month(self, value: str) -> str:
        """A short label for a period starting on `value`, for axis ticks and cohort rows.

        In fa a Gregorian month does not map to one Jalali month, so the label is the Jalali date of
        the period's first day; in ar and en it is the Gregorian month and year.
        """
        day = parse_date(value)
        if self.lang == "fa":
            return self.date(day.isoformat())
        month = _GREGORIAN_MONTHS[self.lang][day.month - 1]
        return self.digits(f"{month} {day.year}")

    def period(self, start: str, end: str) -> str:
        """A date range, e.g. `۱۳۷۷/۰۱/۱۲ تا ۱۳۷۷/۰۴/۰۹`."""
        return self.t("period_range", start=self.date(start), end=self.date(end))

    def timestamp(self, value: str) -> str:
        """An ISO UTC timestamp as a localised date and `HH:MM`, stating the zone."""
        text = str(value).strip().replace("Z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"not an ISO timestamp: {value!r}") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(dt.UTC)
        clock = self.digits(f"{moment.hour:02d}:{moment.minute:02d}")
        return f"{self.date(moment.date().isoformat())} {clock} {self.t('utc')}"
