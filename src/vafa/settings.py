"""Django settings, read from the environment.

Everything a deployment changes comes from an environment variable; the defaults give the embedded
mode (one SQLite file and a SQLite task queue under `var/`).

- `VAFA_HOME`: folder for the database, the queue, the secret key and uploads (default `./var`).
- `DATABASE_URL`: e.g. `postgres://user:pass@host/db` (default SQLite file `var/vafa.sqlite3`).
- `VAFA_QUEUE_URL`: `sqlite:///path` (default `var/queue.sqlite3`), `redis://host:6379/0`, or
  `immediate` (run tasks inline, for tests).
- `SECRET_KEY`: generated once into `var/secret_key` when unset.
- `DEBUG`: off unless `1`/`true`.
- `ALLOWED_HOSTS`: comma separated (default localhost names).
- `VAFA_CACHE_URL`: `redis://…` for a cache shared by every process (default: a Redis
  `VAFA_QUEUE_URL`, else a memory cache per process).
- `VAFA_PORTAL_FRAME_ANCESTORS`, `VAFA_PORTAL_SIGN_IN_LIMIT`: see the README (member portal).
- `VAFA_TRUSTED_PROXIES`: how many reverse proxies of ours stand in front (default 0).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent
VAFA_HOME = Path(os.environ.get("VAFA_HOME", Path.cwd() / "var")).resolve()
VAFA_HOME.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use SECRET_KEY from the environment, else a key generated once and kept in VAFA_HOME."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = VAFA_HOME / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DEBUG")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "vafa.core",
    "vafa.customers",
    "vafa.loyalty",
    "vafa.messaging",
    "vafa.messaging.flows",
    "vafa.messaging.campaigns",
    "vafa.insights",
    "vafa.feedback",
    "vafa.dashboard",
]

# How many reverse proxies of the deployment stand in front of the app (nginx, caddy, a load
# balancer): the client's address and scheme are then read from X-Forwarded-For/-Proto
# (`vafa.core.proxy`). 0 (the default) trusts no such header.
VAFA_TRUSTED_PROXIES = int(os.environ.get("VAFA_TRUSTED_PROXIES", "0"))
if VAFA_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

MIDDLEWARE = [
    "vafa.core.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The chain of REST API requests (`/api/`, see `vafa.core.wsgi`), in MIDDLEWARE's order. The API
# authenticates by key, never by session or cookie, and answers in English, so sessions, users,
# messages, CSRF, languages and static files are left out; together they cost about a tenth of
# an API write's CPU. Of `CommonMiddleware` it needs only the `Content-Length`.
API_MIDDLEWARE = [
    "vafa.core.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "vafa.core.wsgi.ContentLengthMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "vafa.urls"
WSGI_APPLICATION = "vafa.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of other apps' templates (the admin's base_site.html).
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]


# What every PostgreSQL connection gets (the tests' temporary server too).
VAFA_POSTGRES_OPTIONS: dict[str, Any] = {"server_side_binding": True, "prepare_threshold": 2}
VAFA_POSTGRES_ENGINE = "vafa.core.postgresql"


def _databases() -> dict[str, Any]:
    default_url = f"sqlite:///{VAFA_HOME / 'vafa.sqlite3'}"
    # PostgreSQL connections persist for 10 minutes (a quarter more at random, see
    # `vafa.core.postgresql`): a new one costs its first requests tens of milliseconds.
    config: dict[str, Any] = dict(
        dj_database_url.parse(
            os.environ.get("DATABASE_URL", default_url), conn_max_age=600, conn_health_checks=True
        )
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers work while one writer writes; IMMEDIATE takes the write lock at BEGIN
        # so two writers queue on the busy timeout instead of failing mid-transaction.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA foreign_keys=ON;",
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # Server-side binding lets psycopg prepare the statements a connection keeps running
        # (the loyalty and API write paths repeat the same handful): about 40% less PostgreSQL
        # CPU per loyalty write (benchmarks/loyalty_bench.py). See docs/decisions.md.
        config.setdefault("OPTIONS", {}).update(VAFA_POSTGRES_OPTIONS)
        # Django's backend with a health check that reads the socket instead of sending
        # `SELECT 1` on every request (`vafa.core.postgresql.base`).
        config["ENGINE"] = VAFA_POSTGRES_ENGINE
    return {"default": config}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _huey() -> dict[str, Any]:
    url = os.environ.get("VAFA_QUEUE_URL", f"sqlite:///{VAFA_HOME / 'queue.sqlite3'}")
    base: dict[str, Any] = {"name": "vafa", "utc": True, "immediate": False}
    if url == "immediate":
        return {**base, "immediate": True, "immediate_use_memory": True}
    if url.startswith("redis"):
        return {**base, "huey_class": "huey.RedisHuey", "url": url}
    if url.startswith("sqlite:///"):
        return {**base, "huey_class": "huey.SqliteHuey", "filename": url.removeprefix("sqlite:///")}
    raise ValueError(f"VAFA_QUEUE_URL: unsupported scheme in {url!r} (use sqlite:/// or redis://)")


HUEY = _huey()


def _caches() -> dict[str, Any]:
    """Redis when `VAFA_CACHE_URL` (or a Redis `VAFA_QUEUE_URL`) names one, so counters such as
    the member portal's sign-in limit hold across every worker process; otherwise each process
    keeps its own memory cache (the embedded default: limits then count per process)."""
    queue = os.environ.get("VAFA_QUEUE_URL", "")
    url = os.environ.get("VAFA_CACHE_URL") or (queue if queue.startswith("redis") else "")
    if url:
        return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                            "LOCATION": url, "KEY_PREFIX": "vafa"}}
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


CACHES = _caches()

# The member portal (/p/) may be framed by the shop's own pages: its origins, separated by spaces
# or commas (e.g. "https://shop.example https://www.shop.example"); staff pages never are.
VAFA_PORTAL_FRAME_ANCESTORS = os.environ.get("VAFA_PORTAL_FRAME_ANCESTORS", "")
# Magic-link requests allowed per address (IPv4, or IPv6 /64) per 15 minutes.
VAFA_PORTAL_SIGN_IN_LIMIT = int(os.environ.get("VAFA_PORTAL_SIGN_IN_LIMIT", "10"))
# The referral link a member shares, `{code}` filled in: a page of the shop that keeps the code
# and sends it with the new customer (`POST /api/v1/members/{id}/referral`).
VAFA_REFERRAL_URL = os.environ.get("VAFA_REFERRAL_URL", "/r/{code}")
if VAFA_PORTAL_FRAME_ANCESTORS.strip():
    # Inside the shop's frame the portal's forms are cross-site: their CSRF cookie must be
    # allowed there (the member's own cookie is set likewise by the portal).
    CSRF_COOKIE_SAMESITE = "None"
    CSRF_COOKIE_SECURE = True

# Tests only: a test with `serialized_rollback` reloads the database's rows as they were after the
# migrations. Content types and permissions are left out: a flush by an earlier transactional test
# recreates them (post_migrate) under other ids, and reloading the old rows would then collide.
TEST_NON_SERIALIZED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]

# Bounce and complaint webhooks of email providers (anymail, at /anymail/<esp>/tracking/) need the
# basic-auth secret the provider is given in the webhook URL. Without it anymail would accept
# unauthenticated posts (anyone could suppress addresses), so `urls.py` mounts them only when set.
ANYMAIL = {
    "WEBHOOK_SECRET": os.environ.get("VAFA_ANYMAIL_WEBHOOK_SECRET", ""),
    "MAILGUN_WEBHOOK_SIGNING_KEY": os.environ.get("VAFA_MAILGUN_WEBHOOK_SIGNING_KEY", ""),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("VAFA_LANGUAGE", "fa")
LANGUAGES = [("fa", _("Persian")), ("ar", _("Arabic")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = os.environ.get("VAFA_TIME_ZONE", "Asia/Tehran")
# The period the dashboard's KPIs compare ("this season vs last"): M, Q or Y (Gregorian months,
# quarters, years) or JM, JQ, JY (Solar Hijri months, seasons, years, as Iranian shops report).
VAFA_REPORT_PERIOD = os.environ.get("VAFA_REPORT_PERIOD", "JQ" if LANGUAGE_CODE == "fa" else "Q")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Files shared by several apps (the vendored Vazirmatn font) live beside the settings.
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STATIC_ROOT = VAFA_HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request until collectstatic made it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAFA_HOME / "media"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    # `vafa worker` (run_huey) gives huey its own handler; propagating would print every line twice.
    "loggers": {"huey": {"propagate": False}},
}

# Shop-wide defaults that importers and pages fall back to.
VAFA_DEFAULT_CURRENCY = os.environ.get("VAFA_DEFAULT_CURRENCY", "IRT")
VAFA_DEFAULT_COUNTRY = os.environ.get("VAFA_DEFAULT_COUNTRY", "IR")
VAFA_WOOCOMMERCE_SECRET = os.environ.get("VAFA_WOOCOMMERCE_SECRET", "")
VAFA_SHOPIFY_SECRET = os.environ.get("VAFA_SHOPIFY_SECRET", "")
