"""The asyncio client (grpc.aio): the same methods as `Client`, awaited."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator, Callable, List, Optional, Sequence

import grpc
import grpc.aio

from ._channel import FINAL_STATES, OPTIONS, Tls, call_metadata, inpaint_request
from ._retry import RetryPolicy, next_wait, remaining
from .client import _keyed
from .v1 import gateway_pb2 as pb
from .v1 import gateway_pb2_grpc


class AsyncClient:
    """The public API of one gateway, for asyncio. `async with` it, or
    `await close()`."""

    def __init__(
        self,
        target: str,
        *,
        api_key: Optional[str] = None,
        tls: Optional[Tls] = None,
        timeout: Optional[float] = 300.0,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        if tls is None:
            self._channel = grpc.aio.insecure_channel(target, options=OPTIONS)
        else:
            self._channel = grpc.aio.secure_channel(target, tls.credentials(), options=OPTIONS)
        self._stub = gateway_pb2_grpc.InpaintingStub(self._channel)
        self._metadata = call_metadata(api_key)
        self.timeout = timeout
        self.retry = retry

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def inpaint(self, request: Optional[pb.InpaintRequest] = None, **fields: Any) -> pb.InpaintResponse:
        return await self._unary(self._stub.Inpaint, inpaint_request(request, fields))

    async def submit(
        self,
        request: Optional[pb.InpaintRequest] = None,
        *,
        idempotency_key: Optional[str] = None,
        **fields: Any,
    ) -> pb.Job:
        submission = pb.SubmitJobRequest(
            request=inpaint_request(request, fields),
            idempotency_key=idempotency_key or uuid.uuid4().hex,
        )
        return await self._unary(self._stub.SubmitJob, submission)

    async def submit_many(self, submissions: Sequence[pb.SubmitJobRequest]) -> List[pb.SubmitJobOutcome]:
        jobs = [_keyed(s) for s in submissions]
        return list((await self._unary(self._stub.SubmitJobs, pb.SubmitJobsRequest(jobs=jobs))).outcomes)

    async def job(self, job_id: str) -> pb.Job:
        return await self._unary(self._stub.GetJob, pb.GetJobRequest(id=job_id))

    async def cancel(self, job_id: str) -> pb.Job:
        return await self._unary(self._stub.CancelJob, pb.CancelJobRequest(id=job_id))

    async def result(self, job_id: str) -> pb.InpaintResponse:
        return await self._unary(self._stub.GetResult, pb.GetResultRequest(id=job_id))

    async def watch(self, job_id: str, after_sequence: int = 0) -> AsyncIterator[pb.JobEvent]:
        """As `Client.watch`: resumes after the last event when the stream
        breaks."""
        last = after_sequence
        attempt, waited = 1, 0.0
        while True:
            try:
                stream = self._stub.WatchJob(
                    pb.WatchJobRequest(id=job_id, after_sequence=last), metadata=self._metadata
                )
                async for event in stream:
                    last = event.sequence
                    attempt = 1
                    yield event
                    if event.state in FINAL_STATES:
                        stream.cancel()
                        return
                return
            except grpc.aio.AioRpcError as error:
                wait = next_wait(self.retry, error.code(), error.trailing_metadata(), attempt, waited, None)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                attempt, waited = attempt + 1, waited + wait

    async def wait(self, job_id: str) -> pb.JobEvent:
        last = None
        async for last in self.watch(job_id):
            pass
        if last is None:
            raise RuntimeError(f"job {job_id} sent no event")
        return last

    async def _unary(self, method: Callable[..., Any], request: Any) -> Any:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        attempt, waited = 1, 0.0
        while True:
            try:
                return await method(request, timeout=remaining(deadline), metadata=self._metadata)
            except grpc.aio.AioRpcError as error:
                wait = next_wait(self.retry, error.code(), error.trailing_metadata(), attempt, waited, deadline)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                attempt, waited = attempt + 1, waited + wait
