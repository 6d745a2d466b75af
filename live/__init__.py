"""The live transcript (issue #16): the words of a call on the screen while it is spoken.

Asterisk streams each leg of a bridged call (citizen, operator) over AudioSocket to a listening
node; a recogniser per leg turns it into partial and final sentences, which go out on the bus for
the operator's console and a lead who opens the call; the final ones are kept for after the call.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from live.node import ListenNode, NodeConfig

if TYPE_CHECKING:
    import sqlalchemy as sa

    from hotline.bus import Bus
    from ticketing.store import Store

__all__ = ["ListenNode", "NodeConfig", "listen_node"]


def listen_node(settings: Any, bus: Bus, store: Store, engine: sa.Engine) -> ListenNode:
    """A listening node as the settings describe it: the centre's installed model, the call's
    assistant over the store, the legs written beside the recordings."""
    from live.assist import EMERGENCY_PHRASES, Assistant, store_lookups
    from live.engine import VoskEngine
    from recordings import live_legs
    from recordings.transcribe import model_path

    def assistant(*, visit: bool = False) -> Assistant:
        return Assistant(store_lookups(store), forbidden=settings.qa_forbidden_phrases,
                         emergency=settings.live_emergency_phrases or EMERGENCY_PHRASES, visit=visit)

    return ListenNode(NodeConfig.from_settings(settings), bus, lambda: VoskEngine(model_path(settings)),
                      save_leg=functools.partial(live_legs.save, engine), assistant=assistant)
