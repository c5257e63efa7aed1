"""forge_desktop.safetar against hostile tars: each refused case leaves nothing outside the
destination, and an ordinary image rootfs (as ``docker export`` writes it) unpacks whole.
Runs on every supported Python (the Makefile's fast subset includes tests/unit)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from forge_desktop import safetar
from forge_desktop.errors import ImageError

Build = Callable[[tarfile.TarFile], None]


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
           linkname: str = "", uid: int = 0, gid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.uid, info.gid = uid, gid
    info.mtime = 1_000_000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): dest is where we unpack; outside is a sibling a tar must not reach."""
    dest, outside = tmp_path / "box" / "dest", tmp_path / "box" / "outside"
    dest.mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("keep")
    return dest, outside


def unpack(path: Path, dest: Path, stream: bool = False) -> None:
    if stream:
        with open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
            safetar.extract(tar, dest)
    else:
        with tarfile.open(path) as tar:
            safetar.extract(tar, dest)


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str | None]]:
    out: dict[str, tuple[int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            content: bytes | str | None = None
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                content = p.read_bytes()
            out[str(p.relative_to(root))] = (st.st_mode, content)
    return out


HOSTILE: dict[str, list[tuple[tarfile.TarInfo, bytes]]] = {
    "dotdot": [member("../outside/evil", data=b"x")],
    "dotdot-deep": [member("a/b/../../../outside/evil", data=b"x")],
    "absolute-hardlink": [member("h", tarfile.LNKTYPE, linkname="/etc/passwd")],
    "hardlink-dotdot": [member("h", tarfile.LNKTYPE, linkname="../outside/secret")],
    "hardlink-missing": [member("h", tarfile.LNKTYPE, linkname="nothing")],
    "hardlink-to-dir": [member("d", tarfile.DIRTYPE, mode=0o755),
                        member("h", tarfile.LNKTYPE, linkname="d")],
    "hardlink-through-symlink": [member("s", tarfile.SYMTYPE, linkname="."),
                                 member("f", data=b"x"),
                                 member("h", tarfile.LNKTYPE, linkname="s/f")],
    "symlink-dotdot": [member("s", tarfile.SYMTYPE, linkname="../outside")],
    "symlink-absolute-dotdot": [member("a/s", tarfile.SYMTYPE, linkname="/../../outside")],
    "write-through-symlink": [member("s", tarfile.SYMTYPE, linkname="a"),
                              member("a", tarfile.DIRTYPE, mode=0o755),
                              member("s/evil", data=b"x")],
    # each link inside the tree when made; together they lead out (x = y/.. with y = .)
    "symlink-chain": [member("x", tarfile.SYMTYPE, linkname="y/.."),
                      member("y", tarfile.SYMTYPE, linkname=".")],
    "chardev": [member("dev/null", tarfile.CHRTYPE, mode=0o666)],
    "blockdev": [member("dev/sda", tarfile.BLKTYPE, mode=0o660)],
    "fifo": [member("pipe", tarfile.FIFOTYPE, mode=0o644)],
    "empty-symlink": [member("s", tarfile.SYMTYPE, linkname="")],
}


@pytest.mark.parametrize("stream", [False, True], ids=["seekable", "stream"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused_and_nothing_escapes(case: str, stream: bool,
                                                    sandbox: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    dest, outside = sandbox
    before = snapshot(outside)
    tar = make_tar(tmp_path / f"{case}.tar", *HOSTILE[case])
    with pytest.raises(safetar.UnsafeArchive) as err:
        unpack(tar, dest, stream)
    assert isinstance(err.value, ImageError)  # callers report it like any image failure
    assert "refusing to unpack" in str(err.value)
    assert snapshot(outside) == before
    assert sorted(os.listdir(tmp_path / "box")) == ["dest", "outside"]
    # nothing left in the tree that resolves outside it
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            real = os.path.realpath(Path(dirpath) / name)
            assert os.path.commonpath([real, str(dest)]) == str(dest), (name, real)


def test_absolute_name_is_made_relative(sandbox: tuple[Path, Path], tmp_path: Path) -> None:
    dest, _ = sandbox
    unpack(make_tar(tmp_path / "abs.tar", member("/etc/evil", data=b"x")), dest)
    assert (dest / "etc" / "evil").read_bytes() == b"x"


def test_modes_lose_special_bits_and_ownership_is_not_applied(
        sandbox: tuple[Path, Path], tmp_path: Path) -> None:
    dest, _ = sandbox
    tar = make_tar(tmp_path / "modes.tar",
                   member("suid", data=b"x", mode=0o4755, uid=4242, gid=4242),
                   member("sgid", data=b"x", mode=0o2777),
                   member("ro", data=b"x", mode=0o444),
                   member("tmp", tarfile.DIRTYPE, mode=0o1777))
    unpack(tar, dest)
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "sgid").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o644  # owner can read and write
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o755
    assert (dest / "suid").stat().st_uid == os.geteuid()
    assert (dest / "suid").stat().st_gid == os.getegid()


def test_existing_symlink_is_replaced_not_followed(sandbox: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """A name given twice: first a link out of the tree (refused only at the end, so it
    must not be written through before that), then a file of the same name."""
    dest, outside = sandbox
    tar = make_tar(tmp_path / "twice.tar",
                   member("f", tarfile.SYMTYPE, linkname="g"),
                   member("f", data=b"new"))
    unpack(tar, dest)
    assert (dest / "f").read_bytes() == b"new"
    assert not (dest / "f").is_symlink()
    assert (outside / "secret").read_text() == "keep"


@pytest.mark.parametrize("stream", [False, True], ids=["seekable", "stream"])
def test_docker_export_shaped_rootfs_unpacks_whole(sandbox: tuple[Path, Path], tmp_path: Path,
                                                   stream: bool) -> None:
    """What `docker export` of the benchmark image holds (listed on this machine): a busybox
    with applet symlinks, hard links (as the registry's busybox has), etc/mtab -> /proc/mounts."""
    dest, _ = sandbox
    tar = make_tar(tmp_path / "rootfs.tar",
                   member("./", tarfile.DIRTYPE, mode=0o755),
                   member(".dockerenv", data=b"", mode=0o755),
                   member("bin/", tarfile.DIRTYPE, mode=0o755),
                   member("bin/busybox", data=b"\x7fELF busybox", mode=0o755),
                   member("bin/sh", tarfile.SYMTYPE, linkname="busybox", mode=0o777),
                   member("bin/true", tarfile.LNKTYPE, linkname="bin/busybox", mode=0o755),
                   member("etc/", tarfile.DIRTYPE, mode=0o755),
                   member("etc/mtab", tarfile.SYMTYPE, linkname="/proc/mounts", mode=0o777),
                   member("lib", tarfile.SYMTYPE, linkname="/usr/lib", mode=0o777),
                   member("proc/", tarfile.DIRTYPE, mode=0o555),
                   member("tmp/", tarfile.DIRTYPE, mode=0o1777))
    unpack(tar, dest, stream)
    assert (dest / "bin" / "busybox").read_bytes() == b"\x7fELF busybox"
    assert os.readlink(dest / "bin" / "sh") == "busybox"
    assert (dest / "bin" / "true").stat().st_ino == (dest / "bin" / "busybox").stat().st_ino
    # an absolute target is a path in the image's root: rewritten relative to the link
    assert os.readlink(dest / "etc" / "mtab") == "../proc/mounts"
    assert os.readlink(dest / "lib") == "usr/lib"
    assert (dest / "bin" / "busybox").stat().st_mtime == 1_000_000
    assert (dest / "bin").stat().st_mtime == 1_000_000  # set after its content was written
    assert stat.S_IMODE((dest / "proc").stat().st_mode) == 0o755  # owner can write


def test_real_busybox_tar_round_trip(sandbox: tuple[Path, Path], tmp_path: Path) -> None:
    """The tar forge itself builds for the fallback image unpacks to the same tree."""
    from forge_desktop.image import build_busybox_tar, host_busybox

    assert host_busybox() is not None, "provisioning installs busybox-static"
    dest, _ = sandbox
    unpack(build_busybox_tar(tmp_path / "bb.tar"), dest)
    assert (dest / "bin" / "busybox").read_bytes() == Path(host_busybox() or "").read_bytes()
    assert os.readlink(dest / "bin" / "sh") == "busybox"
