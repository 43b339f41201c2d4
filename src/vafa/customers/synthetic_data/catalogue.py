"""The synthetic shop's catalogue: product kinds, their Persian names and Toman price ranges.

A *kind* is finer than a category (phones and phone accessories share the category "mobile and
accessories") because co-purchase structure lives at that level: a phone pulls a case and a charger
into the basket, a laptop pulls a mouse and a bag. Prices are ranges in thousands of Toman at
2025 retail levels of Iranian web shops; the generator draws each product's price inside its range.
"""

from __future__ import annotations

from typing import NamedTuple


class Kind(NamedTuple):
    """A group of interchangeable products with shared basket behaviour."""

    slug: str
    category: str
    popularity: float  # share of orders whose first line is of this kind, before preferences
    more_lines: float  # probability of each further line in a basket anchored on this kind
    bulk: bool  # consumables and cheap items sometimes bought two or three at a time
    digital: bool  # delivered online: no shipping cost


class Item(NamedTuple):
    """One catalogue entry: a Persian product name and its price range in thousand Toman."""

    kind: str
    name: str
    low: int
    high: int


KINDS: tuple[Kind, ...] = (
    Kind("phone", "موبایل و لوازم جانبی", 0.05, 0.55, False, False),
    Kind("phone_accessory", "موبایل و لوازم جانبی", 0.13, 0.35, True, False),
    Kind("laptop", "لپ‌تاپ و لوازم جانبی", 0.02, 0.55, False, False),
    Kind("computer_accessory", "لپ‌تاپ و لوازم جانبی", 0.07, 0.3, True, False),
    Kind("appliance", "لوازم خانگی برقی", 0.07, 0.25, False, False),
    Kind("kitchen", "آشپزخانه", 0.09, 0.35, True, False),
    Kind("cosmetics", "آرایشی و بهداشتی", 0.17, 0.5, True, False),
    Kind("books", "کتاب", 0.1, 0.5, True, False),
    Kind("clothing", "مد و پوشاک", 0.14, 0.4, True, False),
    Kind("toys", "اسباب‌بازی", 0.06, 0.3, True, False),
    Kind("sports", "ورزش و سفر", 0.05, 0.3, False, False),
    Kind("digital", "کارت هدیه و اشتراک", 0.05, 0.2, True, True),
)

# Where a basket's further lines come from, given the kind of its first line (rows need not sum
# to one: the generator normalises them and adds a little mass everywhere for impulse buys).
AFFINITY: dict[str, dict[str, float]] = {
    "phone": {"phone_accessory": 0.8, "computer_accessory": 0.05, "digital": 0.05},
    "phone_accessory": {"phone_accessory": 0.65, "computer_accessory": 0.15, "digital": 0.05},
    "laptop": {"computer_accessory": 0.8, "digital": 0.08, "phone_accessory": 0.05},
    "computer_accessory": {"computer_accessory": 0.55, "phone_accessory": 0.25},
    "appliance": {"kitchen": 0.5, "appliance": 0.25},
    "kitchen": {"kitchen": 0.6, "appliance": 0.15},
    "cosmetics": {"cosmetics": 0.8, "clothing": 0.1},
    "books": {"books": 0.85, "toys": 0.05},
    "clothing": {"clothing": 0.7, "cosmetics": 0.12, "sports": 0.08},
    "toys": {"toys": 0.6, "books": 0.2},
    "sports": {"sports": 0.6, "clothing": 0.25},
    "digital": {"digital": 0.5, "phone_accessory": 0.2},
}

ITEMS: tuple[Item, ...] = (
    # phones
    Item("phone", "گوشی موبایل سامسونگ Galaxy A16 ۱۲۸ گیگابایت", 11_500, 13_500),
    Item("phone", "گوشی موبایل سامسونگ Galaxy A26 ۲۵۶ گیگابایت", 15_500, 18_000),
    Item("phone", "گوشی موبایل سامسونگ Galaxy A36 ۲۵۶ گیگابایت", 21_000, 24_500),
    Item("phone", "گوشی موبایل سامسونگ Galaxy A56 ۲۵۶ گیگابایت", 27_000, 31_000),
    Item("phone", "گوشی موبایل سامسونگ Galaxy S24 FE", 38_000, 44_000),
    Item("phone", "گوشی موبایل شیائومی Redmi Note 14 ۲۵۶ گیگابایت", 13_000, 15_500),
    Item("phone", "گوشی موبایل شیائومی Redmi 14C ۱۲۸ گیگابایت", 7_500, 9_000),
    Item("phone", "گوشی موبایل شیائومی Poco X7 Pro", 20_000, 23_500),
    Item("phone", "گوشی موبایل آنر X8b", 12_000, 14_000),
    Item("phone", "گوشی موبایل اپل iPhone 13 ۱۲۸ گیگابایت", 52_000, 58_000),
    Item("phone", "گوشی موبایل نوکیا 105", 1_400, 1_900),
    Item("phone", "گوشی موبایل جی‌ال‌ایکس Shahin 3", 2_800, 3_500),
    # phone accessories
    Item("phone_accessory", "قاب سیلیکونی گوشی", 150, 350),
    Item("phone_accessory", "قاب محافظ ضدضربه گوشی", 250, 550),
    Item("phone_accessory", "محافظ صفحه نمایش شیشه‌ای", 150, 300),
    Item("phone_accessory", "شارژر دیواری ۲۵ واتی سامسونگ", 750, 1_200),
    Item("phone_accessory", "شارژر فست ۳۳ واتی شیائومی", 550, 900),
    Item("phone_accessory", "کابل تبدیل USB-C یک متری", 150, 400),
    Item("phone_accessory", "کابل لایتنینگ اپل", 450, 1_100),
    Item("phone_accessory", "پاوربانک ۱۰۰۰۰ میلی‌آمپر شیائومی", 1_100, 1_700),
    Item("phone_accessory", "پاوربانک ۲۰۰۰۰ میلی‌آمپر انکر", 2_000, 3_200),
    Item("phone_accessory", "هندزفری بلوتوثی کیو‌سی‌وای T13", 800, 1_300),
    Item("phone_accessory", "هندزفری بلوتوثی سامسونگ Galaxy Buds FE", 4_000, 5_500),
    Item("phone_accessory", "ساعت هوشمند شیائومی Redmi Watch 5", 4_500, 6_500),
    Item("phone_accessory", "هولدر موبایل خودرو", 250, 650),
    Item("phone_accessory", "رم میکرو اس‌دی ۱۲۸ گیگابایت", 450, 750),
    # laptops
    Item("laptop", "لپ‌تاپ لنوو IdeaPad Slim 3 Core i5", 38_000, 45_000),
    Item("laptop", "لپ‌تاپ لنوو V15 Celeron", 19_000, 23_000),
    Item("laptop", "لپ‌تاپ ایسوس Vivobook 15 Core i3", 27_000, 32_000),
    Item("laptop", "لپ‌تاپ ایسوس TUF Gaming F15", 62_000, 72_000),
    Item("laptop", "لپ‌تاپ اچ‌پی 250 G9 Core i5", 35_000, 41_000),
    Item("laptop", "لپ‌تاپ اچ‌پی Victus 15 گیمینگ", 58_000, 67_000),
    Item("laptop", "لپ‌تاپ ایسر Aspire 3", 26_000, 31_000),
    Item("laptop", "لپ‌تاپ اپل MacBook Air M2", 72_000, 82_000),
    Item("laptop", "تبلت سامسونگ Galaxy Tab A9", 11_000, 13_500),
    Item("laptop", "تبلت شیائومی Redmi Pad SE", 12_000, 14_500),
    # computer accessories
    Item("computer_accessory", "ماوس بی‌سیم لاجیتک M185", 450, 750),
    Item("computer_accessory", "ماوس گیمینگ ردراگون", 700, 1_400),
    Item("computer_accessory", "کیبورد بی‌سیم لاجیتک K270", 1_100, 1_600),
    Item("computer_accessory", "کیبورد و ماوس تسکو با حروف فارسی", 450, 800),
    Item("computer_accessory", "کیف لپ‌تاپ ۱۵.۶ اینچی", 800, 1_900),
    Item("computer_accessory", "کوله‌پشتی لپ‌تاپ ضدآب", 1_200, 2_600),
    Item("computer_accessory", "پایه خنک‌کننده لپ‌تاپ", 650, 1_500),
    Item("computer_accessory", "هاب USB-C هفت‌پورت", 900, 1_800),
    Item("computer_accessory", "فلش مموری ۶۴ گیگابایت", 250, 450),
    Item("computer_accessory", "هارد اکسترنال ۱ ترابایت وسترن دیجیتال", 3_800, 4_800),
    Item("computer_accessory", "حافظه SSD اکسترنال ۵۰۰ گیگابایت سامسونگ", 4_500, 6_500),
    Item("computer_accessory", "هدست گیمینگ با میکروفون", 1_300, 3_500),
    Item("computer_accessory", "وب‌کم فول اچ‌دی", 1_200, 2_500),
    Item("computer_accessory", "مودم روتر TP-Link", 1_800, 3_500),
    # home appliances
    Item("appliance", "جاروبرقی پارس خزر ۲۲۰۰ وات", 7_500, 10_000),
    Item("appliance", "جاروبرقی بوش سری ۴", 16_000, 22_000),
    Item("appliance", "جارو شارژی دستی شیائومی", 6_500, 9_500),
    Item("appliance", "مایکروویو سامسونگ ۲۳ لیتری", 11_000, 14_500),
    Item("appliance", "سرخ‌کن بدون روغن فیلیپس", 9_000, 14_000),
    Item("appliance", "سرخ‌کن بدون روغن دسینی", 4_500, 6_500),
    Item("appliance", "چای‌ساز بوش", 6_000, 8_500),
    Item("appliance", "چای‌ساز پارس خزر", 3_200, 4_500),
    Item("appliance", "سماور برقی پارس خزر", 4_000, 5_500),
    Item("appliance", "اتو بخار فیلیپس", 3_500, 6_000),
    Item("appliance", "مخلوط‌کن و آسیاب مولینکس", 3_000, 5_000),
    Item("appliance", "پلوپز پارس خزر ۸ نفره", 3_500, 5_000),
    Item("appliance", "قهوه‌ساز دلونگی", 9_000, 16_000),
    Item("appliance", "بخاری برقی فن‌دار", 2_200, 3_800),
    Item("appliance", "اتو مو و حالت‌دهنده", 1_500, 3_000),
    # kitchen
    Item("kitchen", "سرویس قابلمه گرانیتی ۱۰ پارچه", 6_500, 12_000),
    Item("kitchen", "سرویس قابلمه استیل ۸ پارچه", 9_000, 18_000),
    Item("kitchen", "ماهیتابه گرانیتی سایز ۲۸", 1_200, 2_500),
    Item("kitchen", "سرویس چاقوی آشپزخانه ۶ پارچه", 1_200, 3_500),
    Item("kitchen", "سرویس غذاخوری چینی ۲۸ پارچه", 6_000, 14_000),
    Item("kitchen", "استکان و نعلبکی کمر باریک ۱۲ پارچه", 500, 1_200),
    Item("kitchen", "قوری چینی گل‌سرخی", 600, 1_500),
    Item("kitchen", "فلاسک چای استیل یک لیتری", 800, 1_800),
    Item("kitchen", "ظرف نگهدارنده غذا ۵ عددی", 300, 700),
    Item("kitchen", "تخته برش بامبو", 200, 500),
    Item("kitchen", "کتری و قوری روگازی", 1_000, 2_500),
    Item("kitchen", "لیوان دسته‌دار سرامیکی", 150, 400),
    Item("kitchen", "آبکش و سبد استیل", 400, 900),
    Item("kitchen", "زودپز ۶ لیتری", 2_500, 5_500),
    # cosmetics
    Item("cosmetics", "کرم ضدآفتاب بی‌رنگ SPF50 سینره", 300, 600),
    Item("cosmetics", "کرم ضدآفتاب رنگی لافارر", 350, 700),
    Item("cosmetics", "کرم مرطوب‌کننده سراوی", 700, 1_200),
    Item("cosmetics", "ژل شست‌وشوی صورت", 250, 600),
    Item("cosmetics", "شامپو ضدریزش", 150, 450),
    Item("cosmetics", "ماسک موی آرگان", 250, 550),
    Item("cosmetics", "رژ لب مات", 250, 900),
    Item("cosmetics", "ریمل حجم‌دهنده میبلین", 450, 1_100),
    Item("cosmetics", "کرم پودر", 400, 1_300),
    Item("cosmetics", "سرم ویتامین سی", 450, 1_200),
    Item("cosmetics", "عطر زنانه ادو پرفیوم ۱۰۰ میل", 2_500, 9_000),
    Item("cosmetics", "ادکلن مردانه ادو تویلت ۱۰۰ میل", 2_000, 8_000),
    Item("cosmetics", "ماشین اصلاح فیلیپس", 2_000, 5_500),
    Item("cosmetics", "سشوار رمینگتون", 2_000, 4_500),
    Item("cosmetics", "اسپری دئودورانت", 150, 350),
    Item("cosmetics", "خمیردندان سفیدکننده", 150, 300),
    # books
    Item("books", "کتاب دیوان حافظ (نسخه نفیس)", 650, 1_800),
    Item("books", "کتاب شاهنامه فردوسی (دوره دوجلدی)", 1_500, 3_800),
    Item("books", "کتاب گلستان سعدی", 250, 600),
    Item("books", "کتاب مثنوی معنوی", 700, 1_800),
    Item("books", "کتاب بوف کور اثر صادق هدایت", 150, 300),
    Item("books", "کتاب سووشون اثر سیمین دانشور", 250, 500),
    Item("books", "کتاب کلیدر (دوره ده‌جلدی)", 3_500, 6_500),
    Item("books", "کتاب صد سال تنهایی", 300, 600),
    Item("books", "کتاب ملت عشق", 300, 550),
    Item("books", "کتاب عادت‌های اتمی", 250, 450),
    Item("books", "کتاب انسان در جست‌وجوی معنا", 150, 350),
    Item("books", "کتاب شازده کوچولو", 150, 300),
    Item("books", "کتاب کمک‌درسی ریاضی پایه دوازدهم", 350, 650),
    Item("books", "کتاب تست زبان انگلیسی کنکور", 400, 750),
    Item("books", "کتاب داستان مصور کودکان", 150, 350),
    Item("books", "کتاب آموزش برنامه‌نویسی پایتون", 450, 900),
    # clothing
    Item("clothing", "مانتو کتان زنانه", 1_300, 3_500),
    Item("clothing", "مانتو بلند مجلسی", 2_500, 6_000),
    Item("clothing", "شال نخی", 300, 800),
    Item("clothing", "روسری ابریشمی", 600, 2_200),
    Item("clothing", "پیراهن مردانه آستین‌بلند", 900, 2_400),
    Item("clothing", "تی‌شرت نخی", 400, 1_100),
    Item("clothing", "شلوار جین مردانه", 1_100, 2_800),
    Item("clothing", "شلوار جین زنانه", 1_100, 2_800),
    Item("clothing", "کاپشن زمستانی", 3_000, 9_000),
    Item("clothing", "کفش ورزشی مردانه", 2_000, 7_500),
    Item("clothing", "کفش زنانه پاشنه‌دار", 1_500, 4_500),
    Item("clothing", "کیف دستی زنانه", 1_000, 4_000),
    Item("clothing", "جوراب بسته ۳ عددی", 150, 400),
    Item("clothing", "ست لباس کودک", 600, 1_800),
    Item("clothing", "کمربند چرم مردانه", 450, 1_500),
    # toys
    Item("toys", "لگو سری Classic", 1_800, 6_500),
    Item("toys", "لگو سری Technic", 5_000, 15_000),
    Item("toys", "پازل ۱۰۰۰ تکه", 350, 1_100),
    Item("toys", "عروسک پولیشی خرس", 400, 1_500),
    Item("toys", "ماشین کنترلی", 1_500, 5_500),
    Item("toys", "بازی فکری کاتان", 900, 1_800),
    Item("toys", "بازی فکری مافیا", 300, 700),
    Item("toys", "بازی منچ و مار و پله", 150, 400),
    Item("toys", "مکعب روبیک ۳ در ۳", 200, 600),
    Item("toys", "خمیر بازی ۱۲ رنگ", 150, 400),
    Item("toys", "ست نقاشی کودک", 300, 900),
    Item("toys", "دسته بازی پلی‌استیشن ۵", 5_000, 7_500),
    # sports and travel
    Item("sports", "دمبل ۵ کیلوگرمی (جفت)", 900, 2_000),
    Item("sports", "تشک یوگا ۸ میلی‌متری", 500, 1_500),
    Item("sports", "توپ فوتبال سایز ۵", 600, 2_500),
    Item("sports", "دوچرخه کوهستان سایز ۲۶", 15_000, 32_000),
    Item("sports", "کوله‌پشتی کوهنوردی ۴۵ لیتری", 1_800, 5_500),
    Item("sports", "قمقمه ورزشی", 200, 700),
    Item("sports", "چادر مسافرتی ۴ نفره", 3_500, 9_000),
    Item("sports", "طناب ورزشی", 150, 450),
    Item("sports", "راکت بدمینتون (جفت)", 600, 2_500),
    Item("sports", "کش بدنسازی ۵ عددی", 350, 900),
    Item("sports", "ساک ورزشی", 700, 1_800),
    Item("sports", "کیسه خواب", 1_500, 4_000),
    # digital goods
    Item("digital", "کارت هدیه ۵۰۰ هزار تومانی", 500, 500),
    Item("digital", "کارت هدیه یک میلیون تومانی", 1_000, 1_000),
    Item("digital", "کارت هدیه دو میلیون تومانی", 2_000, 2_000),
    Item("digital", "اشتراک سه‌ماهه فیلیمو", 250, 350),
    Item("digital", "اشتراک یک‌ساله فیلیمو", 800, 1_100),
    Item("digital", "اشتراک سه‌ماهه نماوا", 250, 350),
    Item("digital", "لایسنس آنتی‌ویروس یک‌ساله", 350, 700),
    Item("digital", "اشتراک یک‌ماهه فیدیبو", 150, 250),
)
