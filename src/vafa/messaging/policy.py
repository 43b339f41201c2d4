"""When a marketing message may go out: quiet hours, the weekend and frequency caps, each counted
in the customer's own time zone.

Pure functions over plain values (no database), so each rule can be tested with any zone and
moment. `send_window` answers "send now" or the earliest moment every rule allows, with the rule
that held the message back; the outbox then defers or drops it as the shop's policy says.

Caps count local calendar days: "3 per 7 days" means at most 3 accepted marketing messages with
local dates in the last 7 days, today included. A customer in Toronto and one in Tehran reach
their next day (and their quiet hours) at different UTC moments, and both are honoured in the
same batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from django.conf import settings

from vafa.core.timeutil import DateError, get_zone

QUIET_HOURS = "quiet_hours"
WEEKEND = "weekend"
CAP = "cap"
FREQUENCY = "frequency"
_MAX_ROUNDS = 16


def customer_zone(timezone_name: str) -> ZoneInfo:
    """The customer's zone, or the shop's `TIME_ZONE` when it is blank or unknown."""
    if timezone_name:
        try:
            return get_zone(timezone_name)
        except DateError:
            pass
    return get_zone(settings.TIME_ZONE)


@dataclass(frozen=True)
class Cap:
    """At most `messages` in `days` local calendar days (today included)."""

    messages: int
    days: int
    reason: str = CAP


@dataclass(frozen=True)
class Rules:
    quiet_start: time | None
    quiet_end: time | None
    weekend: frozenset[int]  # ISO weekdays on which no marketing goes out
    caps: tuple[Cap, ...]


@dataclass(frozen=True)
class Window:
    """`reason` is empty when the message may go now; else the first rule that held it back
    and `not_before` the earliest moment all rules allow."""

    reason: str
    not_before: datetime

    @property
    def allowed(self) -> bool:
        return not self.reason


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def in_quiet_hours(local: datetime, start: time, end: time) -> bool:
    """Whether the local time falls in [start, end), the window may wrap past midnight."""
    moment = local.time()
    if start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def _quiet_end_after(local: datetime, start: time, end: time) -> datetime:
    """The end of the quiet period that `local` is in."""
    zone = local.tzinfo
    today_end = datetime.combine(local.date(), end, tzinfo=zone)
    if start > end and local.time() >= start:  # evening part of a window across midnight
        return today_end + timedelta(days=1)
    return today_end


def _cap_release(local: datetime, sent_local_days: Sequence[date], cap: Cap) -> datetime | None:
    """Local midnight of the first day the cap allows another message, or None if it allows one
    now. Messages leave the window oldest first; to get under the cap the (k − cap + 1)-th
    oldest one in the window must leave it."""
    if cap.messages <= 0:
        return None
    first_day = local.date() - timedelta(days=cap.days - 1)
    days = sorted(d for d in sent_local_days if first_day <= d <= local.date())
    if len(days) < cap.messages:
        return None
    must_leave = days[len(days) - cap.messages]
    return _local_midnight(must_leave + timedelta(days=cap.days), local.tzinfo or ZoneInfo("UTC"))


def send_window(
    *, now: datetime, zone: tzinfo, rules: Rules, sent_at: Sequence[datetime] = ()
) -> Window:
    """When a marketing message to a customer in `zone` may go, given the accepted marketing
    messages `sent_at` (aware datetimes) they already received."""
    sent_days = [moment.astimezone(zone).date() for moment in sent_at]
    first_reason = ""
    candidate = now.astimezone(zone)
    for _ in range(_MAX_ROUNDS):
        moved_by = ""
        if rules.weekend and candidate.isoweekday() in rules.weekend:
            day = candidate.date() + timedelta(days=1)
            while day.isoweekday() in rules.weekend:
                day += timedelta(days=1)
            candidate, moved_by = _local_midnight(day, zone), WEEKEND
        elif (
            rules.quiet_start is not None
            and rules.quiet_end is not None
            and in_quiet_hours(candidate, rules.quiet_start, rules.quiet_end)
        ):
            candidate = _quiet_end_after(candidate, rules.quiet_start, rules.quiet_end)
            moved_by = QUIET_HOURS
        else:
            for cap in rules.caps:
                release = _cap_release(candidate, sent_days, cap)
                if release is not None and release > candidate:
                    candidate, moved_by = release, cap.reason
                    break
        if not moved_by:
            break
        # Wall-clock arithmetic can land on a time a DST change skipped; normalise through UTC.
        candidate = candidate.astimezone(ZoneInfo("UTC")).astimezone(zone)
        first_reason = first_reason or moved_by
    return Window(reason=first_reason, not_before=candidate.astimezone(ZoneInfo("UTC")))


def retry_delay(*, attempts: int, base_seconds: int, max_seconds: int, jitter_seed: int = 0) -> float:
    """Exponential back-off before attempt `attempts + 1`: base, 2×base, 4×base… up to the
    maximum, with up to 10% deterministic jitter (from `jitter_seed`, e.g. the message id) so
    messages that failed together do not retry together."""
    delay = min(float(max_seconds), base_seconds * 2.0 ** max(0, attempts - 1))
    return delay * (1 + (jitter_seed * 2654435761 % 1000) / 10_000)
