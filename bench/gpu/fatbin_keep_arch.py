"""Keeps one GPU architecture's machine code in a CUDA library and zeroes
the others' (same size, same layout), so that the library compresses to a
fraction: onnxruntime-gpu's libonnxruntime_providers_cuda.so (284 MB; sm_75
to sm_120 cubins) becomes 51 MB of xz with sm_90 alone, small enough to
carry to an H100/H200 lease whose upload is limited to 64 MiB.

The fat binaries in the .nv_fatbin section are a run of containers
(magic 0xBA55ED50, header size, payload size), each a run of entries
(kind 1 = PTX, 2 = ELF cubin; header size, payload size; the architecture
at offset 28 of the entry header). Only payloads are zeroed: every header
stays, and the CUDA runtime loads the entry whose architecture matches the
card (seen working on an H200: bench/gpu/lease.sh).

Usage: fatbin_keep_arch.py LIB ARCH OUT   (ARCH: 90 for sm_90)
       fatbin_keep_arch.py LIB            (the bytes per kind and arch)
"""
import collections
import struct
import subprocess
import sys

CONTAINER_MAGIC = 0xBA55ED50


def fatbin_section(path):
    """(offset, size) of .nv_fatbin in the ELF file, read with readelf."""
    out = subprocess.run(["readelf", "-S", "-W", path], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if " .nv_fatbin " in line:
            fields = line.split("]", 1)[1].split()
            return int(fields[3], 16), int(fields[4], 16)
    raise SystemExit(f"{path}: no .nv_fatbin section")


def entries(data, start, size):
    """(payload offset, payload size, kind, arch) of every entry."""
    pos, end = start, start + size
    while pos < end:
        magic, _version, header, payload = struct.unpack_from("<IHHQ", data, pos)
        if magic != CONTAINER_MAGIC:
            pos += 8  # containers are 8-byte aligned, padding between them
            continue
        p, q = pos + header, pos + header + payload
        while p < q:
            kind, _ver, eheader, epayload = struct.unpack_from("<HHIQ", data, p)
            (arch,) = struct.unpack_from("<I", data, p + 28)
            yield p + eheader, epayload, kind, arch
            p += eheader + epayload
        pos = q


def main():
    path = sys.argv[1]
    data = bytearray(open(path, "rb").read())
    start, size = fatbin_section(path)
    found = list(entries(data, start, size))
    tally = collections.Counter()
    for _, n, kind, arch in found:
        tally[("ptx" if kind == 1 else "cubin", arch)] += n
    for (kind, arch), n in sorted(tally.items()):
        print(f"kind={kind} arch=sm_{arch} mib={n / 2**20:.1f}")
    if len(sys.argv) == 4:
        keep = int(sys.argv[2])
        zeroed = 0
        for at, n, _kind, arch in found:
            if arch != keep:
                data[at:at + n] = bytes(n)
                zeroed += n
        open(sys.argv[3], "wb").write(data)
        print(f"kept=sm_{keep} zeroed_mib={zeroed / 2**20:.1f}")


if __name__ == "__main__":
    main()
