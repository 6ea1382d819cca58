#!/usr/bin/env python3
"""Example: submit a folder of photos as jobs, watch their progress, save
the results.

    submit_folder.py --gateway 127.0.0.1:50051 --input photos/ --output out/ \
        [--mask-dir masks/ | --faces | --detect "text"]

Every progress event is printed as one line: `job=ID seq=N stage=... state=...`.
Exits non-zero if any job did not succeed.
"""
import argparse
import sys
import threading
from pathlib import Path

from inpaint_client import FINAL, connect, pb

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--mask-dir", type=Path)
    target.add_argument("--faces", action="store_true")
    target.add_argument("--detect", metavar="PHRASE", help='e.g. "text", "faces and text", "watermark"')
    args = ap.parse_args()
    stub = connect(args.gateway)
    args.output.mkdir(parents=True, exist_ok=True)

    photos = sorted(p for p in args.input.iterdir() if p.suffix.lower() in EXTENSIONS)
    submissions = []
    for photo in photos:
        request = pb.InpaintRequest(image=photo.read_bytes(), params=pb.InpaintParams(mask_blur=4))
        if args.faces:
            request.faces.CopyFrom(pb.FaceTarget())
        elif args.detect:
            request.detect.CopyFrom(pb.DetectTarget(prompt=args.detect))
        else:
            request.mask = (args.mask_dir / photo.name).read_bytes()
        submissions.append(pb.SubmitJobRequest(request=request, idempotency_key=f"example-{photo.name}"))
    outcomes = stub.SubmitJobs(pb.SubmitJobsRequest(jobs=submissions)).outcomes

    lock = threading.Lock()
    failures = []

    def follow(photo: Path, job_id: str) -> None:
        last = None
        for event in stub.WatchJob(pb.WatchJobRequest(id=job_id)):
            last = event
            with lock:
                print(f"job={job_id} photo={photo.name} seq={event.sequence} stage={event.stage} "
                      f"state={pb.JobState.Name(event.state)} regions={event.regions_done}/{event.regions_total}",
                      flush=True)
        if last is None or last.state != pb.JOB_STATE_SUCCEEDED:
            failures.append(photo.name)
            return
        result = stub.GetResult(pb.GetResultRequest(id=job_id))
        (args.output / f"{photo.stem}.png").write_bytes(result.image)

    threads = []
    for photo, outcome in zip(photos, outcomes):
        if not outcome.HasField("job"):
            print(f"photo={photo.name} refused code={outcome.error_code} message={outcome.error_message}")
            failures.append(photo.name)
            continue
        t = threading.Thread(target=follow, args=(photo, outcome.job.id))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print(f"submitted={len(photos)} succeeded={len(photos) - len(failures)} failed={len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
