"""CTI bridge: AMI → typed events → live state of calls, seats and queues → the bus.

Import the public surface from :mod:`cti.service` (``CtiService``, ``run``); domain event
types from :mod:`cti.domain`; the bus interface from :mod:`hotline.bus`.
"""
