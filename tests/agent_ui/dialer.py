"""A console process that dials one callback, for the test that kills it (test_dialing.py).

``python -m tests.agent_ui.dialer URL AMI_PORT REQUEST NUMBER``: on the database at URL, claim the
first dial of REQUEST and send its Originate over a real AMI connection to 127.0.0.1:AMI_PORT, as
operator op1024 at seat 8001. Prints ``ready`` once logged in to the AMI.
"""

from __future__ import annotations

import asyncio
import sys

from agent_ui import dialing
from cti.actions import CtiActions
from cti.link import AmiLink
from cti.state import CtiState
from hotline.db import make_engine


async def main(url: str, port: int, request: str, number: str) -> None:
    engine = make_engine(url)
    link = AmiLink("127.0.0.1", port, "hotline", "pw", handle=lambda e: [], publish=lambda e: None,
                   action_timeout=60)
    await link.start(wait=10)
    print("ready", flush=True)
    await dialing.dial(engine, CtiActions(link, CtiState()), request, 0, seat="8001", number=number, by="op1024")
    print("dialled", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
