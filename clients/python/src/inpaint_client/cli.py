"""`inpaint-client`: the API from a shell, for people without the Rust
toolchain.

    inpaint-client inpaint photo.jpg (--mask mask.png | --faces | --detect PHRASE) -o out.png
    inpaint-client submit-folder --input photos/ --output out/ (--mask-dir masks/ | --faces | --detect PHRASE)

The gateway is --gateway or $INPAINT_GATEWAY (default 127.0.0.1:50051); the
API key is --api-key or $INPAINT_API_KEY.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

import grpc

from . import pb
from ._channel import Tls
from .client import Client

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    tls = Tls(root_certificates=args.ca.read_bytes()) if args.ca else None
    try:
        with Client(args.gateway, api_key=args.api_key, tls=tls) as client:
            return args.run(client, args)
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="inpaint-client", description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default=os.environ.get("INPAINT_GATEWAY", "127.0.0.1:50051"))
    ap.add_argument("--api-key", default=os.environ.get("INPAINT_API_KEY"))
    ap.add_argument("--ca", type=Path, help="PEM CA of the gateway's TLS certificate (TLS on)")
    commands = ap.add_subparsers(required=True, metavar="COMMAND")

    one = commands.add_parser("inpaint", help="repaint one image, synchronously")
    one.add_argument("image", type=Path)
    one.add_argument("-o", "--output", type=Path, required=True)
    _add_target(one, "--mask", "mask image (white = repaint)")
    one.add_argument("--mask-blur", type=int, default=4)
    one.set_defaults(run=_inpaint)

    folder = commands.add_parser("submit-folder", help="submit every photo of a folder as a job")
    folder.add_argument("--input", type=Path, required=True)
    folder.add_argument("--output", type=Path, required=True)
    _add_target(folder, "--mask-dir", "folder of masks named as the photos")
    folder.add_argument("--mask-blur", type=int, default=4)
    folder.set_defaults(run=_submit_folder)
    return ap


def _add_target(parser: argparse.ArgumentParser, mask_flag: str, mask_help: str) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(mask_flag, type=Path, dest="mask", help=mask_help)
    target.add_argument("--faces", action="store_true")
    target.add_argument("--detect", metavar="PHRASE", help='e.g. "text", "faces and text", "watermark"')


def _request(image: Path, mask: Optional[Path], args: argparse.Namespace) -> pb.InpaintRequest:
    request = pb.InpaintRequest(image=image.read_bytes(), params=pb.InpaintParams(mask_blur=args.mask_blur))
    if args.faces:
        request.faces.CopyFrom(pb.FaceTarget())
    elif args.detect:
        request.detect.CopyFrom(pb.DetectTarget(prompt=args.detect))
    else:
        assert mask is not None
        request.mask = mask.read_bytes()
    return request


def _inpaint(client: Client, args: argparse.Namespace) -> int:
    result = client.inpaint(_request(args.image, args.mask, args))
    args.output.write_bytes(result.image)
    print(f"wrote {args.output} regions={len(result.regions)}")
    return 0


def _submit_folder(client: Client, args: argparse.Namespace) -> int:
    """Every progress event is printed as one line (`job=ID photo=NAME
    seq=N stage=... state=...`); exits 1 if any job did not succeed."""
    args.output.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in args.input.iterdir() if p.suffix.lower() in EXTENSIONS)
    submissions = [
        pb.SubmitJobRequest(
            request=_request(photo, args.mask / photo.name if args.mask else None, args),
            idempotency_key=f"submit-folder-{photo.name}-{os.getpid()}",
        )
        for photo in photos
    ]
    outcomes = client.submit_many(submissions)
    lock = threading.Lock()
    failures: List[str] = []

    def follow(photo: Path, job_id: str) -> None:
        last = None
        for last in client.watch(job_id):
            with lock:
                print(f"job={job_id} photo={photo.name} seq={last.sequence} stage={last.stage} "
                      f"state={pb.JobState.Name(last.state)} regions={last.regions_done}/{last.regions_total}",
                      flush=True)
        if last is None or last.state != pb.JOB_STATE_SUCCEEDED:
            with lock:
                failures.append(photo.name)
            return
        (args.output / f"{photo.stem}.png").write_bytes(client.result(job_id).image)

    threads = []
    for photo, outcome in zip(photos, outcomes):
        if not outcome.HasField("job"):
            print(f"photo={photo.name} refused code={outcome.error_code} message={outcome.error_message}")
            failures.append(photo.name)
            continue
        thread = threading.Thread(target=follow, args=(photo, outcome.job.id))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    print(f"submitted={len(photos)} succeeded={len(photos) - len(failures)} failed={len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
