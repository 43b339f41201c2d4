"""The channels a message can go out on, built for one flush from the environment."""

from __future__ import annotations

from vafa.messaging.channels.base import Channel, protect_logs
from vafa.messaging.channels.email import EmailChannel
from vafa.messaging.channels.sms import KavenegarChannel, TwilioChannel
from vafa.messaging.channels.telegram import TelegramChannel
from vafa.messaging.channels.webpush import WebPushChannel
from vafa.messaging.conf import MessagingEnv


def build_channels(env: MessagingEnv) -> dict[str, Channel]:
    """One instance of each channel for this flush. A channel without configuration still
    exists and answers `NotConfigured`, so its messages wait instead of failing."""
    protect_logs(env.secrets)
    sms: Channel = TwilioChannel(env) if env.sms_provider == "twilio" else KavenegarChannel(env)
    return {
        "email": EmailChannel(env),
        "sms": sms,
        "telegram": TelegramChannel(env),
        "push": WebPushChannel(env),
    }
