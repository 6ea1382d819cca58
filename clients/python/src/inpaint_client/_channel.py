"""What both clients share: channel options, credentials, call metadata and
the request a call's arguments make."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import grpc

from .v1 import gateway_pb2

# Images travel as multi-megabyte messages (the gateway's own limit is set
# by its max image size; this only keeps the client from refusing first).
MAX_MESSAGE = 256 << 20

OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    # gRPC's own retries would not honour retry-after; ours do.
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True)
class Tls:
    """TLS to the gateway: the CA that signed its certificate (PEM; None
    uses the system's roots), and a client certificate and key for mTLS."""

    root_certificates: Optional[bytes] = None
    certificate_chain: Optional[bytes] = None
    private_key: Optional[bytes] = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def call_metadata(api_key: Optional[str]) -> List[Tuple[str, str]]:
    return [("authorization", f"Bearer {api_key}")] if api_key else []


def inpaint_request(request: Optional[gateway_pb2.InpaintRequest], fields: dict[str, Any]) -> gateway_pb2.InpaintRequest:
    """The request itself, or one made of keyword fields
    (`image=..., mask=..., params={"mask_blur": 4}`)."""
    if request is not None and fields:
        raise TypeError("pass either a request or its fields, not both")
    return request if request is not None else gateway_pb2.InpaintRequest(**fields)


FINAL_STATES = frozenset({
    gateway_pb2.JOB_STATE_SUCCEEDED,
    gateway_pb2.JOB_STATE_FAILED,
    gateway_pb2.JOB_STATE_CANCELLED,
})
