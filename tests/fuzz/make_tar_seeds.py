#!/usr/bin/env python3
"""Writes the tar seeds of fuzz_tar into corpus/tar/ (run by hand; the output is committed).

Small and deterministic: fixed times and owners, records of one block instead of tar's 10 KiB.
"""
import gzip
import io
import os
import tarfile

tarfile.RECORDSIZE = tarfile.BLOCKSIZE  # no 10 KiB padding
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "tar")


def member(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1700000000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def archive(members, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            t.addfile(info, data)
    return buf.getvalue()


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


os.makedirs(OUT, exist_ok=True)
simple = archive([
    member("./", tarfile.DIRTYPE, mode=0o755),
    member("./a/", tarfile.DIRTYPE, mode=0o755),
    member("./a/hello.txt", data=b"hello"),
    member("./a/link", tarfile.SYMTYPE, link="hello.txt"),
])
write("simple.tar", simple)
write("simple.tar.gz", gzip.compress(simple, mtime=0))
write("pax.tar", archive([
    member("d" * 120 + "/", tarfile.DIRTYPE, mode=0o700),
    member("d" * 120 + "/f", data=b"x" * 700, mode=0o4755),
    member("hard", tarfile.LNKTYPE, link="d" * 120 + "/f"),
    member("fifo", tarfile.FIFOTYPE),
    member("ro/", tarfile.DIRTYPE, mode=0o500),
], fmt=tarfile.PAX_FORMAT))
# Hostile members: through a link the workspace already holds, a link made by the archive, a
# hard link out, a name with "..", an absolute name.
write("hostile.tar", archive([
    member("out_file", data=b"replaced"),
    member("s", tarfile.SYMTYPE, link="../sentinel"),
    member("s/x", data=b"through the link"),
]))
write("hardlink_out.tar", archive([member("h", tarfile.LNKTYPE, link="out/keep")]))
write("dotdot.tar", archive([member("a/../../x", data=b"x")]))
write("absolute.tar", archive([member("/tmp/x", data=b"x")], fmt=tarfile.GNU_FORMAT))
