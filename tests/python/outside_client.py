#!/usr/bin/env python3
"""An outside gRPC client: stubs generated from our .proto files at run time
(grpcio-tools), then health and Inpaint called on a running gateway.

Usage: outside_client.py HOST:PORT PHOTO.png
Exits non-zero on the first failed check.
"""
import struct
import sys
import tempfile
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"


def generate_stubs(into: Path) -> None:
    files = sorted(str(p) for p in (PROTO_ROOT / "inpaint" / "v1").glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}",
                        f"--python_out={into}", f"--grpc_python_out={into}", *files])
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, str(into))


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "result is not a PNG"
    return struct.unpack(">II", data[16:24])


def mask_png(width: int, height: int, box) -> bytes:
    """A white-on-black 8-bit greyscale PNG, written with zlib only."""
    import zlib
    x0, y0, w, h = box
    rows = b"".join(
        b"\x00" + bytes(255 if (x0 <= x < x0 + w and y0 <= y < y0 + h) else 0 for x in range(width))
        for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def main() -> None:
    addr, photo_path = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        generate_stubs(Path(tmp))
        from inpaint.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

        options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        with grpc.insecure_channel(addr, options=options) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="inpaint.v1.Inpainting"), timeout=10)
            assert status.status == health_pb2.HealthCheckResponse.SERVING, status
            print("check=health status=SERVING")

            photo = Path(photo_path).read_bytes()
            width, height = png_size(photo)
            stub = gateway_pb2_grpc.InpaintingStub(channel)
            reply = stub.Inpaint(gateway_pb2.InpaintRequest(
                image=photo,
                mask=mask_png(width, height, (330, 20, 24, 24)),
                params=gateway_pb2.InpaintParams(mask_blur=4, area=common_pb2.INPAINT_AREA_ONLY_MASKED),
            ), timeout=60)
            assert png_size(reply.image) == (width, height), png_size(reply.image)
            assert (reply.width, reply.height) == (width, height)
            assert not reply.unchanged
            assert reply.engine == "telea", reply.engine
            assert len(reply.crops) == 1 and reply.crops[0].work_width == 512
            stages = [t.stage for t in reply.timings]
            assert stages == ["decode", "segment", "prepare", "inpaint", "composite", "encode"], stages
            print(f"check=inpaint bytes={len(reply.image)} crops={len(reply.crops)}")

            try:
                stub.Inpaint(gateway_pb2.InpaintRequest(image=b"nope", mask=b"nope"), timeout=10)
                sys.exit("bad image was accepted")
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
                assert err.details().startswith("image:"), err.details()
            print("check=invalid_argument field=image")


if __name__ == "__main__":
    main()
