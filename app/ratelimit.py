"""Each client's event rate: a token bucket that also says when a client floods."""
from __future__ import annotations

import threading
import time


class TokenBucket:
    """events_per_s refill, burst capacity; take() is False when the client is too fast.

    overflow counts refused events and drains at the same rate: a client that keeps
    sending past the limit (rather than slowing down when told) runs it up, and
    flooding() says when it passes FLOOD_BURSTS bursts' worth."""

    FLOOD_BURSTS = 10

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), time.monotonic()
        self.overflow = 0.0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            elapsed, self.t = now - self.t, now
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.overflow = max(0.0, self.overflow - elapsed * self.rate)
            if self.tokens < 1:
                self.overflow += 1
                return False
            self.tokens -= 1
            return True

    def flooding(self) -> bool:
        return self.overflow > self.FLOOD_BURSTS * max(1, self.burst)
