"""Models of the dashboard app: the member portal's live in `vafa.dashboard.portal.models`."""

from vafa.dashboard.portal.models import DataRequest, MemberSession

__all__ = ["DataRequest", "MemberSession"]
