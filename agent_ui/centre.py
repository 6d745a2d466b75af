"""The web room's door to centre isolation (hotline/centres.py): the scope of the person asking,
and the live roster that places a seat in a centre."""

from __future__ import annotations

from typing import Any

from hotline.centres import CentreScope, SeatQueues, scope_of
from hotline.identity import Principal


def scope(app: Any, who: Principal) -> CentreScope:
    """``app``: the FastAPI app (``request.app``, ``websocket.app``)."""
    return scope_of(who.centre, app.state.settings.centres)


def seat_queues(app: Any) -> SeatQueues:
    cti = app.state.cti
    if cti is None:
        return lambda _seat: frozenset()
    return cti.seat_queues
