"""Provisioning and running the project's own Asterisk 22 (chroot), or using one already there."""

from hotline.asterisk.errors import AsteriskError

__all__ = ["AsteriskError"]
