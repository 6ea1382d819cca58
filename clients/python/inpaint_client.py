"""Python client for the inpainting cluster (inpaint.v1).

The gRPC stubs are generated from the repository's .proto files with
grpcio-tools the first time this module is imported (into a cache folder
next to it), so they always match the server. Requirements:
tests/python/requirements.txt (grpcio, grpcio-tools, protobuf).

    from inpaint_client import connect, pb
    stub = connect("127.0.0.1:50051")
    job = stub.SubmitJob(pb.SubmitJobRequest(request=pb.InpaintRequest(...)))
"""
import importlib
import sys
from pathlib import Path

import grpc
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
GENERATED = Path(__file__).resolve().parent / ".generated"


def _generate() -> None:
    files = sorted(str(p) for p in (PROTO_ROOT / "inpaint" / "v1").glob("*.proto"))
    newest = max(Path(f).stat().st_mtime for f in files)
    marker = GENERATED / "inpaint" / "v1" / "gateway_pb2_grpc.py"
    if marker.exists() and marker.stat().st_mtime >= newest:
        return
    GENERATED.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={GENERATED}",
                        f"--grpc_python_out={GENERATED}", *files])
    if code != 0:
        raise RuntimeError(f"protoc failed with {code}")


_generate()
sys.path.insert(0, str(GENERATED))
pb = importlib.import_module("inpaint.v1.gateway_pb2")
common = importlib.import_module("inpaint.v1.common_pb2")
_grpc = importlib.import_module("inpaint.v1.gateway_pb2_grpc")

MAX_MESSAGE = 256 << 20


def connect(address: str):
    """An Inpainting stub for the gateway at HOST:PORT."""
    channel = grpc.insecure_channel(address, options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ])
    return _grpc.InpaintingStub(channel)


FINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}
