"""Every message and enum of the public API in one namespace
(`pb.InpaintRequest`, `pb.FaceTarget`, `pb.JOB_STATE_SUCCEEDED`, ...)."""
from .v1.common_pb2 import *  # noqa: F401,F403
from .v1.segmentation_pb2 import *  # noqa: F401,F403
from .v1.gateway_pb2 import *  # noqa: F401,F403
