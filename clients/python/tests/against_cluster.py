"""The installed inpaint-client package against a running cluster (run by
tests/tests/python_package.rs from a folder outside the repository, with a
fresh venv's python). Prints `ok NAME` per check; any failure raises.

    against_cluster.py --gateway HOST:PORT --key KEY --slow-key KEY \
        --idle-gateway HOST:PORT --image PNG --mask PNG --repo DIR --out DIR
"""
import argparse
import asyncio
import socket
import threading
import time
from pathlib import Path

import grpc

import inpaint_client
from inpaint_client import AsyncClient, Client, RetryPolicy, pb


def contiguous(events, first=1):
    sequences = [e.sequence for e in events]
    assert sequences == list(range(first, first + len(sequences))), sequences
    return sequences


def request(args):
    return pb.InpaintRequest(image=args.image.read_bytes(), mask=args.mask.read_bytes(),
                             params=pb.InpaintParams(mask_blur=4))


def check_outside(args):
    installed = Path(inpaint_client.__file__).resolve()
    assert "site-packages" in installed.parts, installed
    assert (args.repo / "clients").resolve() not in installed.parents, installed
    assert args.repo.resolve() not in Path.cwd().resolve().parents, Path.cwd()
    print("ok installed outside the repository", installed.parent)


def check_sync(args):
    with Client(args.gateway, api_key=args.key) as client:
        (args.out / "sync_inpaint.png").write_bytes(client.inpaint(request(args)).image)
        job = client.submit(request(args))
        events = list(client.watch(job.id))
        contiguous(events)
        assert events[-1].state == pb.JOB_STATE_SUCCEEDED, events[-1]
        assert any(e.stage == "inpainting" for e in events), [e.stage for e in events]
        (args.out / "sync_job.png").write_bytes(client.result(job.id).image)
        # The same idempotency key gives back the same job.
        again = client.submit(request(args), idempotency_key="same-key")
        assert client.submit(request(args), idempotency_key="same-key").id == again.id
    print("ok sync inpaint submit watch result")


async def check_async(args):
    async with AsyncClient(args.gateway, api_key=args.key) as client:
        (args.out / "async_inpaint.png").write_bytes((await client.inpaint(request(args))).image)
        job = await client.submit(request(args))
        events = [e async for e in client.watch(job.id)]
        contiguous(events)
        assert events[-1].state == pb.JOB_STATE_SUCCEEDED, events[-1]
        (args.out / "async_job.png").write_bytes((await client.result(job.id)).image)
    async with AsyncClient(args.idle_gateway) as client:
        job = await client.submit(request(args))
        cancelled = await client.cancel(job.id)
        assert cancelled.state == pb.JOB_STATE_CANCELLED, cancelled
        final = await client.wait(job.id)
        assert final.state == pb.JOB_STATE_CANCELLED, final
        try:
            await client.result(job.id)
            raise AssertionError("a cancelled job has a result")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    print("ok async inpaint submit watch result cancel")


def check_sync_cancel(args):
    with Client(args.idle_gateway) as client:
        job = client.submit(request(args))
        assert client.cancel(job.id).state == pb.JOB_STATE_CANCELLED
        assert client.wait(job.id).state == pb.JOB_STATE_CANCELLED
        assert client.job(job.id).state == pb.JOB_STATE_CANCELLED
    print("ok sync cancel")


class CuttingProxy:
    """A TCP proxy to `target` whose open connections the test can cut."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.accepted = 0
        self.open = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.accepted += 1
                self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.open = []


def until(condition, what, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def check_watch_resumes(args):
    """A watch stream cut mid-way opens again after its last event: nothing
    lost, nothing repeated."""
    proxy = CuttingProxy(args.idle_gateway)
    with Client(proxy.address) as through_proxy, Client(args.idle_gateway) as direct:
        job = through_proxy.submit(request(args))
        events, errors = [], []

        def watch():
            try:
                events.extend(through_proxy.watch(job.id))
            except Exception as error:  # reported below
                errors.append(error)

        watcher = threading.Thread(target=watch)
        watcher.start()
        until(lambda: events, "the first event")
        connections = proxy.accepted
        proxy.cut()
        until(lambda: proxy.accepted > connections, "the watch to reconnect")
        time.sleep(0.3)  # let the resumed stream reach the gateway
        direct.cancel(job.id)
        watcher.join(30)
        assert not watcher.is_alive() and not errors, errors
        contiguous(events)
        assert events[0].state == pb.JOB_STATE_QUEUED, events[0]
        assert events[-1].state == pb.JOB_STATE_CANCELLED, events[-1]
    print(f"ok watch resumes after a cut stream events={len(events)} connections={proxy.accepted}")


def check_retry_after(args):
    """The slow tenant may make one request every 2 s: the second is refused
    with retry-after, and retried after it by the default policy."""
    with Client(args.gateway, api_key=args.slow_key, retry=RetryPolicy.never()) as once:
        once.inpaint(request(args))
        try:
            once.inpaint(request(args))
            raise AssertionError("the tenant's rate was not enforced")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            retry_after = float(dict(error.trailing_metadata())["retry-after"])
            assert retry_after >= 1, retry_after
    # The client's sleeps are recorded: it must wait what the server said
    # (its own backoff, 0.5 s then 1 s, would not), once.
    sleeps = []
    real_sleep = inpaint_client.client.time.sleep

    def recorded(seconds):
        sleeps.append(seconds)
        real_sleep(seconds)

    inpaint_client.client.time.sleep = recorded
    try:
        with Client(args.gateway, api_key=args.slow_key) as patient:
            # Two calls: whatever the timing, the second spends a fresh token.
            results = [patient.inpaint(request(args)) for _ in range(2)]
    finally:
        inpaint_client.client.time.sleep = real_sleep
    assert all(r.image for r in results)
    assert sleeps and len(sleeps) <= 2 and all(s >= 1 for s in sleeps), sleeps
    print(f"ok retried after retry-after={retry_after:.0f}s sleeps={sleeps}")


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--gateway", "--key", "--slow-key", "--idle-gateway"):
        ap.add_argument(flag, required=True)
    for flag in ("--image", "--mask", "--repo", "--out"):
        ap.add_argument(flag, required=True, type=Path)
    args = ap.parse_args()
    check_outside(args)
    check_sync(args)
    asyncio.run(check_async(args))
    check_sync_cancel(args)
    check_watch_resumes(args)
    check_retry_after(args)
    print("all ok")


if __name__ == "__main__":
    main()
