"""Start Django from the CLI (commands that need the database call `setup()` first)."""

from __future__ import annotations

import os


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vafa.settings")
    import django

    django.setup()
