"""The worker's periodic work on shop data (huey discovers `<app>.tasks` modules): the change
feed's dispatch and the nightly product recommendations."""

from vafa.customers.changes import dispatch_changes, dispatch_changes_now
from vafa.customers.recommendations import refresh_recommendations

__all__ = ["dispatch_changes", "dispatch_changes_now", "refresh_recommendations"]
