"""The order in which decided states may be saved: after their outputs, and after every
earlier batch's outputs (see `streams.app.decide`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


class Barrier:
    """Chains each batch's pending deliveries to the batches still in flight before it."""

    def __init__(self) -> None:
        self.last: asyncio.Future[Any] | None = None

    def chain(self, pending: list[Awaitable[Any]]) -> asyncio.Future[Any] | None:
        """A future done when `pending` and everything chained before are acknowledged, or
        None when nothing is outstanding (the batch may save at once).

        A finished, delivered barrier is not linked, so the chain is only as long as what
        is in flight (linking every one kept every acknowledgement ever received). A failed
        one is: every later barrier fails too, so no state that may depend on an
        undelivered output is saved."""
        earlier = self.last
        delivered = earlier is None or (earlier.done() and not earlier.cancelled()
                                        and earlier.exception() is None)
        if not pending and delivered:
            return None
        linked = [] if delivered or earlier is None else [earlier]
        self.last = asyncio.gather(*linked, *pending)
        return self.last
