"""WSGI entry point for gunicorn and `vafa serve`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vafa.settings")
application = get_wsgi_application()
