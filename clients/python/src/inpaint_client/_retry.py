"""When to try a refused call again: pure functions shared by the sync and
asyncio clients."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import grpc

# The server's answers that mean "not now": over a budget, or a stage or
# replica away. Either carries `retry-after` (seconds) when the server knows.
RETRYABLE = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})


@dataclass(frozen=True)
class RetryPolicy:
    """How long a refused call may keep trying.

    `max_attempts` counts the first try; `max_wait` bounds the seconds
    spent waiting between tries in all; `backoff` is the first wait when
    the server gave no retry-after (doubling up to `max_backoff`).
    """

    max_attempts: int = 5
    max_wait: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 10.0

    @classmethod
    def never(cls) -> "RetryPolicy":
        return cls(max_attempts=1)


def retry_after(metadata: Optional[Sequence[Tuple[str, object]]]) -> Optional[float]:
    """The `retry-after` seconds in a status's trailing metadata, if any."""
    for key, value in metadata or ():
        if key == "retry-after":
            try:
                return max(0.0, float(value if isinstance(value, str) else value.decode()))
            except (ValueError, AttributeError):
                return None
    return None


def next_wait(
    policy: RetryPolicy,
    code: Optional[grpc.StatusCode],
    metadata: Optional[Sequence[Tuple[str, object]]],
    attempt: int,
    waited: float,
    deadline: Optional[float],
) -> Optional[float]:
    """Seconds to wait before try `attempt + 1`, or None to give up: the
    code is not retryable, the attempts or the wait budget are spent, or the
    wait would pass the call's deadline (a monotonic time)."""
    if code not in RETRYABLE or attempt >= policy.max_attempts:
        return None
    wait = retry_after(metadata)
    if wait is None:
        wait = min(policy.backoff * (2 ** (attempt - 1)), policy.max_backoff)
    if waited + wait > policy.max_wait:
        return None
    if deadline is not None and time.monotonic() + wait >= deadline:
        return None
    return wait


def remaining(deadline: Optional[float]) -> Optional[float]:
    """The time left to a deadline, for one try's gRPC timeout."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
