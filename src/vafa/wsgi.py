"""WSGI entry point for gunicorn and `vafa serve` (API requests take a shorter middleware chain:
see `vafa.core.wsgi`)."""

import os

from vafa.core.wsgi import get_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vafa.settings")
application = get_application()
