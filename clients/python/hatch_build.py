"""Generates the inpaint.v1 stubs into the wheel at build time.

protoc (from grpcio-tools) writes the message modules, their .pyi types
and the service stubs for the public API's .proto files; their imports
are moved under `inpaint_client.v1` so the package owns no top-level
`inpaint` name.
"""
import re
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# The public API and what it imports (the stages' own services stay out).
PROTOS = ["common", "segmentation", "gateway"]
IMPORT = re.compile(r"^from inpaint\.v1 import ", re.MULTILINE)


def proto_root(project: Path) -> Path:
    """proto/ beside this file in an sdist, or the repository's."""
    for candidate in (project / "proto", project.parent.parent / "proto"):
        if (candidate / "inpaint" / "v1" / "gateway.proto").is_file():
            return candidate
    raise RuntimeError(f"no inpaint/v1/*.proto under {project}/proto or the repository's proto/")


def generate(root: Path, out: Path) -> list[Path]:
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"
    files = [str(root / "inpaint" / "v1" / f"{name}.proto") for name in PROTOS]
    code = protoc.main(["protoc", f"-I{root}", f"-I{include}", f"--python_out={out}",
                        f"--pyi_out={out}", f"--grpc_python_out={out}", *files])
    if code != 0:
        raise RuntimeError(f"protoc failed ({code})")
    generated = sorted((out / "inpaint" / "v1").glob("*.py*"))
    for path in generated:
        path.write_text(IMPORT.sub("from inpaint_client.v1 import ", path.read_text()))
    return generated


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        self._scratch = tempfile.TemporaryDirectory()
        out = Path(self._scratch.name)
        for path in generate(proto_root(Path(self.root)), out):
            if path.name.endswith("_grpc.py") and path.stem != "gateway_pb2_grpc":
                continue  # files without services
            build_data["force_include"][str(path)] = f"inpaint_client/v1/{path.name}"
        init = out / "__init__.py"
        init.write_text('"""Generated from proto/inpaint/v1 when the wheel was built."""\n')
        build_data["force_include"][str(init)] = "inpaint_client/v1/__init__.py"

    def finalize(self, version, build_data, artifact_path):
        self._scratch.cleanup()
