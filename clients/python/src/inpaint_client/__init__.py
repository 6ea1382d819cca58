"""Client for the inpainting cluster's public gRPC API (inpaint.v1).

    from inpaint_client import Client, pb
    with Client("127.0.0.1:50051") as client:
        result = client.inpaint(image=photo_bytes, mask=mask_bytes)
"""
from . import pb
from ._channel import FINAL_STATES, Tls
from ._retry import RetryPolicy
from .aio import AsyncClient
from .client import Client

__all__ = ["AsyncClient", "Client", "FINAL_STATES", "RetryPolicy", "Tls", "pb"]
__version__ = "0.1.0"
