"""Admin pages of the dashboard app: the member portal's data requests."""

from vafa.dashboard.portal import admin as portal_admin  # noqa: F401  (registers the models)
