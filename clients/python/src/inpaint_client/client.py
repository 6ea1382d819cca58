"""The blocking client."""
from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator, List, Optional, Sequence, TypeVar

import grpc

from ._channel import FINAL_STATES, OPTIONS, Tls, call_metadata, inpaint_request
from ._retry import RetryPolicy, next_wait, remaining
from .v1 import gateway_pb2 as pb
from .v1 import gateway_pb2_grpc

T = TypeVar("T")


class Client:
    """The public API of one gateway (HOST:PORT).

    `timeout` is each call's deadline in seconds, retries included (None:
    no deadline); `retry` says how long refused calls keep trying. Use it
    as a context manager, or call `close()`.
    """

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
            self._channel = grpc.insecure_channel(target, options=OPTIONS)
        else:
            self._channel = grpc.secure_channel(target, tls.credentials(), options=OPTIONS)
        self._stub = gateway_pb2_grpc.InpaintingStub(self._channel)
        self._metadata = call_metadata(api_key)
        self.timeout = timeout
        self.retry = retry

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def inpaint(self, request: Optional[pb.InpaintRequest] = None, **fields: Any) -> pb.InpaintResponse:
        """Repaints one image and returns the result (synchronous)."""
        return self._unary(self._stub.Inpaint, inpaint_request(request, fields))

    def submit(
        self,
        request: Optional[pb.InpaintRequest] = None,
        *,
        idempotency_key: Optional[str] = None,
        **fields: Any,
    ) -> pb.Job:
        """Queues a job. Without an idempotency key one is made up, so a
        retried submission can never queue the job twice."""
        submission = pb.SubmitJobRequest(
            request=inpaint_request(request, fields),
            idempotency_key=idempotency_key or uuid.uuid4().hex,
        )
        return self._unary(self._stub.SubmitJob, submission)

    def submit_many(self, submissions: Sequence[pb.SubmitJobRequest]) -> List[pb.SubmitJobOutcome]:
        """Queues several jobs in one call; each outcome says whether its
        job was accepted (submissions without a key get one)."""
        jobs = [_keyed(s) for s in submissions]
        return list(self._unary(self._stub.SubmitJobs, pb.SubmitJobsRequest(jobs=jobs)).outcomes)

    def job(self, job_id: str) -> pb.Job:
        return self._unary(self._stub.GetJob, pb.GetJobRequest(id=job_id))

    def cancel(self, job_id: str) -> pb.Job:
        """Asks the job to stop at its next stage boundary."""
        return self._unary(self._stub.CancelJob, pb.CancelJobRequest(id=job_id))

    def result(self, job_id: str) -> pb.InpaintResponse:
        """The result of a SUCCEEDED job."""
        return self._unary(self._stub.GetResult, pb.GetResultRequest(id=job_id))

    def watch(self, job_id: str, after_sequence: int = 0) -> Iterator[pb.JobEvent]:
        """The job's progress events until it ends. A stream that breaks
        (a dropped connection, a replica going away) is opened again after
        the last event seen, so no event is lost or repeated; the retry
        policy bounds the tries in a row that bring no event."""
        last = after_sequence
        attempt, waited = 1, 0.0
        while True:
            try:
                stream = self._stub.WatchJob(
                    pb.WatchJobRequest(id=job_id, after_sequence=last), metadata=self._metadata
                )
                try:
                    for event in stream:
                        last = event.sequence
                        attempt = 1
                        yield event
                        if event.state in FINAL_STATES:
                            return
                    return
                finally:
                    stream.cancel()  # the caller stopped early, or it ended
            except grpc.RpcError as error:
                wait = next_wait(self.retry, error.code(), error.trailing_metadata(), attempt, waited, None)
                if wait is None:
                    raise
                time.sleep(wait)
                attempt, waited = attempt + 1, waited + wait

    def wait(self, job_id: str) -> pb.JobEvent:
        """Watches the job to its end and returns its last event."""
        last = None
        for last in self.watch(job_id):
            pass
        if last is None:
            raise RuntimeError(f"job {job_id} sent no event")
        return last

    def _unary(self, method: Callable[..., T], request: Any) -> T:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        attempt, waited = 1, 0.0
        while True:
            try:
                return method(request, timeout=remaining(deadline), metadata=self._metadata)
            except grpc.RpcError as error:
                wait = next_wait(self.retry, error.code(), error.trailing_metadata(), attempt, waited, deadline)
                if wait is None:
                    raise
                time.sleep(wait)
                attempt, waited = attempt + 1, waited + wait


def _keyed(submission: pb.SubmitJobRequest) -> pb.SubmitJobRequest:
    if submission.idempotency_key:
        return submission
    keyed = pb.SubmitJobRequest()
    keyed.CopyFrom(submission)
    keyed.idempotency_key = uuid.uuid4().hex
    return keyed
