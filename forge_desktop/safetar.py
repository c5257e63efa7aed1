"""Unpack a container filesystem tar without trusting it, the same way on every Python.

``TarFile.extractall(filter=...)`` exists only from Python 3.11.4 / 3.10.12 on, and the
filters of those releases were bypassable through link chains until mid-2025; forge must
unpack identically on every Python it supports. So this module does the extraction itself,
one member at a time (it also works on a stream, ``mode="r|"``), with the guarantees of the
stdlib ``data`` filter:

- member names are relative: a leading ``/`` is stripped; a ``..`` component is refused;
- nothing is written through a symlink: every parent directory is checked with ``lstat``,
  and an existing entry is removed (never followed) before a member takes its place;
- only regular files, directories, symlinks and hard links: device nodes and FIFOs are
  refused;
- hard links point at a regular file already unpacked inside the tree;
- symlinks resolve inside the tree, checked once more when the whole tree is there (a later
  link can change where an earlier one leads). An absolute target is a path in the image's
  own root (``etc/mtab -> /proc/mounts`` in every ``docker export``), so it is rewritten
  relative to the link, which means the same thing in the container and stays in the tree
  on the host;
- modes lose setuid, setgid, sticky and group/other write bits; the owner can read and write
  what is unpacked; ownership is never changed (files belong to whoever unpacks).

Anything refused raises ``UnsafeArchive`` naming the member: the caller throws the partial
tree away.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path

from forge_desktop.errors import ImageError


class UnsafeArchive(ImageError):
    """A tar member would escape the destination or create something forge refuses."""


def _refuse(member: tarfile.TarInfo, why: str) -> UnsafeArchive:
    return UnsafeArchive(f"refusing to unpack {member.name!r}: {why}")


def _parts(member: tarfile.TarInfo, name: str) -> list[str]:
    """The components of a member name (or a hard link's target) below the destination."""
    parts = [p for p in name.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(member, f"the path {name!r} has a '..' component")
    return parts


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


class _Extractor:
    def __init__(self, dest: Path) -> None:
        self.root = os.path.realpath(dest)
        self.links: list[tuple[tarfile.TarInfo, str]] = []
        self.dir_times: list[tuple[str, float]] = []

    def _parent(self, member: tarfile.TarInfo, parts: list[str]) -> str:
        """Make the parent directories of ``parts`` (real directories, never symlinks)."""
        path = self.root
        for part in parts[:-1]:
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise _refuse(member, f"its parent {os.path.relpath(path, self.root)!r} is "
                                      f"{kind}")
        return path

    def _clear(self, path: str, keep_dir: bool) -> None:
        """Remove what is at ``path`` (a tar may hold a name twice), without following it."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _parts(member, member.name)
        if not parts:
            if member.isdir():
                return  # "./": the destination itself
            raise _refuse(member, "the name is empty")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise _refuse(member, "it is a device node, FIFO or other special file")
        path = os.path.join(self._parent(member, parts), parts[-1])
        self._clear(path, keep_dir=member.isdir())
        mode = member.mode & 0o755  # no setuid, setgid, sticky, group or other write
        if member.isdir():
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            os.chmod(path, mode | 0o700)
            self.dir_times.append((path, member.mtime))
        elif member.isreg():
            mode = (mode if mode & 0o100 else mode & ~0o111) | 0o600
            src = tar.extractfile(member)
            if src is None:  # pragma: no cover - isreg() members always have data
                raise _refuse(member, "no data")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out, src:
                shutil.copyfileobj(src, out)
            os.chmod(path, mode)
            os.utime(path, (member.mtime, member.mtime))
        elif member.islnk():
            os.link(self._link_source(member), path, follow_symlinks=False)
        else:
            link = member.linkname
            if not link:
                raise _refuse(member, "the symlink target is empty")
            if link.startswith("/"):  # a path in the image's root: relative to this link
                link = "../" * (len(parts) - 1) + link.lstrip("/") or "."
            os.symlink(link, path)
            self._check_link(member, path)
            self.links.append((member, path))

    def _link_source(self, member: tarfile.TarInfo) -> str:
        """The regular file, already unpacked, that hard link ``member`` names; found with
        ``lstat`` only, so no symlink on the way is followed."""
        path = self.root
        for part in _parts(member, member.linkname) or ["."]:
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                raise _refuse(member, f"its link target {member.linkname!r} is not in the "
                                      "archive before it") from None
            if stat.S_ISLNK(st.st_mode):
                raise _refuse(member, f"its link target {member.linkname!r} goes through a "
                                      "symlink")
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(member, f"its link target {member.linkname!r} is not a regular file")
        return path

    def _escapes(self, member: tarfile.TarInfo, path: str) -> UnsafeArchive | None:
        """The error for a symlink that leads out of the tree, which is removed first: a
        refused archive leaves no way out behind."""
        resolved = os.path.realpath(path)
        if _inside(resolved, self.root):
            return None
        os.unlink(path)
        return _refuse(member, f"the symlink to {member.linkname!r} leads out of the tree "
                               f"(to {resolved})")

    def _check_link(self, member: tarfile.TarInfo, path: str) -> None:
        error = self._escapes(member, path)
        if error is not None:
            raise error

    def finish(self) -> None:
        # Now every link exists, chains resolve as they will be followed. Check them all
        # before raising, and again after a removal (which changes where others lead), so
        # none that leads out is left.
        errors: list[UnsafeArchive] = []
        links = self.links
        while True:
            found = [(m, p, e) for m, p in links if (e := self._escapes(m, p)) is not None]
            if not found:
                break
            errors += [e for _m, _p, e in found]
            links = [(m, p) for m, p in links if os.path.lexists(p)]
        if errors:
            raise errors[0]
        for path, mtime in reversed(self.dir_times):  # after their content was written
            os.utime(path, (mtime, mtime))


def extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack every member of ``tar`` (opened for reading, random access or a stream) into
    the existing directory ``dest``; raises ``UnsafeArchive`` on anything unsafe."""
    extractor = _Extractor(dest)
    for member in tar:
        extractor.member(tar, member)
    extractor.finish()
