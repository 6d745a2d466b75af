"""The one outbound interface: ``await notifier.send(message)`` → :class:`Delivery`.

The notifier picks the message's channel (``email``, ``sms``) and never raises: a failure is a
``failed`` delivery with the channel's reason, for the log and its retries to handle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from notify.channels import Channel, ChannelError, Delivery, LogOnly, Message, SmsGateway, SmtpChannel

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self.channels = dict(channels)

    @classmethod
    def from_settings(cls, settings: Any) -> Notifier:
        """E-mail over SMTP when ``smtp_host`` is set, SMS over the gateway when ``sms_gateway_url``
        is set; either left empty is log only (the demo's default: nothing leaves the machine)."""
        email: Channel = LogOnly()
        if settings.smtp_host:
            email = SmtpChannel(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                                user=settings.smtp_user, password=settings.smtp_password.get_secret_value(),
                                starttls=settings.smtp_starttls, timeout_s=settings.smtp_timeout_s)
        sms: Channel = LogOnly()
        if settings.sms_gateway_url:
            sms = SmsGateway(url=settings.sms_gateway_url, token=settings.sms_gateway_token.get_secret_value(),
                             timeout_s=settings.sms_timeout_s)
        return cls({"email": email, "sms": sms})

    async def send(self, message: Message) -> Delivery:
        channel = self.channels.get(message.channel)
        if channel is None:
            return Delivery("failed", "", f"未配置通知渠道“{message.channel}”")
        try:
            return await channel.send(message)
        except ChannelError as e:
            log.warning("notification %s to %s failed: %s", message.key or message.kind, message.to, e)
            return Delivery("failed", channel.transport, str(e))
        except Exception as e:  # a channel's bug must not stop the sweep: logged, retried like any failure
            log.exception("notification %s to %s: unexpected error", message.key or message.kind, message.to)
            return Delivery("failed", channel.transport, f"发送出错：{type(e).__name__}：{e}"[:500])
