"""Bare OCI runtimes (runc, crun): ``<runtime> run`` on a bundle made from the image's rootfs.

The rootfs is cached under ``$FORGE_HOME/bundles/<image>/rootfs`` (filled by image.py from an
engine's export, or from the host's static busybox); each run writes its own config.json.

Modes. ``plain``: ``<runtime> run`` as is, with the run's memory and pids limits when forge is
root. ``cgroup2-namespace``: where the host refuses crun (cgroup v1 hybrid: "cgroups in hybrid
mode not supported"), crun runs with ``--cgroup-manager=disabled`` in a private mount namespace
with cgroup2 on /sys/fs/cgroup, entered once per run by a helper (nshelper.py) that times each
``crun run`` alone. No cgroup limits apply there: results say ``cgroup_limits: false``. It is
chosen only when the plain probe fails and the namespace probe works.

A user who is not root gets rootless containers (``<runtime> spec --rootless``, a user
namespace mapping their uid to root) with a state directory of their own (``state_root``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from forge_desktop.config import forge_home
from forge_desktop.errors import EngineError, EngineTimeout, RuntimeUnavailable
from forge_desktop.models import (
    OCI_ID_PREFIX,
    RunContext,
    RunSpec,
    RuntimeInfo,
    RuntimeKind,
    Sample,
)
from forge_desktop.runtimes.base import (
    Footprint,
    StoreReport,
    oci_container_id,
    oci_is_leftover,
)
from forge_desktop.runtimes.common import Clock, first_line, run_cmd, timed_cmd
from forge_desktop.runtimes.nshelper import NamespaceHelper

_SAFE_RE = re.compile(r"[^a-zA-Z0-9._-]+")


def bundle_root(image: str) -> Path:
    return forge_home() / "bundles" / _SAFE_RE.sub("_", image)


def rootfs_dir(image: str) -> Path:
    return bundle_root(image) / "rootfs"


def run_dir_for(spec: RunSpec, run_id: str, runtime: str) -> Path:
    """One bundle config per run, runtime and container settings (command, network): runc
    and crun of one run write different configs (a rootless crun in its namespace maps uids
    differently), so they never share one."""
    key = zlib.crc32(json.dumps([spec.command, spec.network]).encode())
    return bundle_root(spec.image) / "runs" / f"{run_id}-{runtime}-{key:08x}"


def rootfs_ready(image: str) -> bool:
    return (bundle_root(image) / "source.json").is_file()


Mode = Literal["plain", "cgroup2-namespace"]
NAMESPACE_NOTE = "cgroup2 namespace, no cgroup limits"
ROOTLESS_NOTE = "rootless, no cgroup limits"
NAMESPACE_RUNTIMES = frozenset({"crun"})
"""Runtimes that can run without a cgroup manager, hence in the cgroup2 namespace fallback."""


@dataclass(frozen=True)
class _Verdict:
    reason: str | None
    mode: Mode = "plain"


def state_root(name: str) -> Path | None:
    """Where the runtime keeps container state. root: the runtime's default (/run/runc,
    /run/crun), which the rest of the machine's tooling reads. Others: the runtimes'
    defaults live under /run/user/UID, missing when the session has no XDG_RUNTIME_DIR
    (su, runuser, cron), so forge names one: under $XDG_RUNTIME_DIR, else $FORGE_HOME/run."""
    if os.geteuid() == 0:
        return None
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    base = Path(xdg) / "forge-desktop" if xdg and os.access(xdg, os.W_OK) \
        else forge_home() / "run"
    return base / name


def _ids_in_argv(ids: set[str]) -> set[str]:
    """Which of ``ids`` appear as an argument of a live process."""
    found: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                args = fh.read().decode(errors="replace").split("\0")
            found |= ids.intersection(args)
    return found


class OciRuntime:
    kind: RuntimeKind = "oci"
    _probes: ClassVar[dict[str, _Verdict]] = {}
    """Probe verdicts per binary path, kept for the life of the process."""

    def __init__(self, name: str, timeout_s: float = 30.0,
                 clock: Clock = time.perf_counter) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.clock = clock
        self._binary = shutil.which(name)
        self._run_dirs: list[Path] = []
        self._helper: NamespaceHelper | None = None

    @property
    def binary(self) -> str:
        if not self._binary:
            raise RuntimeUnavailable(f"{self.name}: {self.available()}")
        return self._binary

    def _base(self) -> list[str]:
        """The binary and its global options: state root, for a user who is not root."""
        root = state_root(self.name)
        if root is None:
            return [self.binary]
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"{self.name}: cannot create its state directory {root}: "
                              f"{exc.strerror}; set XDG_RUNTIME_DIR or FORGE_HOME to a "
                              "writable directory") from None
        return [self.binary, "--root", str(root)]

    def _run_argv(self, mode: Mode, *args: str) -> list[str]:
        disabled = ["--cgroup-manager=disabled"] if mode == "cgroup2-namespace" else []
        return [*self._base(), *disabled, "run", *args]

    def _start_helper(self) -> NamespaceHelper:
        """``unshare`` into a mount namespace of our own (and, for a user who is not root, a
        user and cgroup namespace, without which the kernel refuses the cgroup2 mount)."""
        rootless = ["--user", "--map-root-user", "--cgroup"] if os.geteuid() != 0 else []
        return NamespaceHelper(["unshare", *rootless, "--mount", "--propagation", "private"],
                               f"{self.name} namespace helper", min(self.timeout_s, 15.0))

    def _probe_in(self, mode: Mode, helper: NamespaceHelper | None) -> str | None:
        """Run a container whose command does not exist: reaching exec proves the runtime can
        set up namespaces and cgroups here; anything earlier is the reason it cannot."""
        assert self._binary
        with tempfile.TemporaryDirectory(prefix="forge-probe-") as tmp:
            bundle = Path(tmp)
            (bundle / "rootfs").mkdir()
            cid = f"{OCI_ID_PREFIX}probe-{os.getpid()}-{int(time.time() * 1000)}"
            timeout = min(self.timeout_s, 15.0)
            try:
                self._write_config(bundle, Path("rootfs"), ["/forge-probe-missing"], "none",
                                   None, mode)
                argv = self._run_argv(mode, "--bundle", str(bundle), cid)
                if helper is None:
                    out = run_cmd(argv, timeout, f"{self.name} probe")
                    code, err = out.returncode, out.stderr
                else:
                    doc = helper.request("run", argv, timeout, f"{self.name} probe")
                    code, err = int(doc["rc"]), str(doc["stderr"])
            except EngineError as exc:
                return str(exc)
            finally:
                with contextlib.suppress(EngineError):
                    run_cmd([*self._base(), "delete", "-f", cid], 10, f"{self.name} delete")
        low = err.lower()
        if "no such file" in low or "not found" in low or "forge-probe-missing" in low:
            return None
        return f"{self.name} cannot run containers here: {first_line(err)}" if code else None

    def _probe(self) -> _Verdict:
        try:
            self._base()  # a state directory it cannot create: that alone is the reason
        except EngineError as exc:
            return _Verdict(str(exc))
        plain = self._probe_in("plain", None)
        if plain is None:
            return _Verdict(None)
        hint = "" if os.geteuid() == 0 else (
            f"; as a user who is not root, {self.name} needs unprivileged user namespaces "
            "(sysctl user.max_user_namespaces > 0)")
        if self.name not in NAMESPACE_RUNTIMES:
            return _Verdict(plain + hint)
        # e.g. "cgroups in hybrid mode not supported": a cgroup2-only view of its own works
        if not shutil.which("unshare"):
            return _Verdict(f"{plain}; the cgroup2 namespace fallback needs unshare "
                            "(apt install util-linux)")
        try:
            helper = self._start_helper()
        except EngineError as exc:
            return _Verdict(f"{plain}; nor in a private cgroup2 namespace ({exc}){hint}")
        try:
            fallback = self._probe_in("cgroup2-namespace", helper)
        finally:
            helper.close()
        if fallback:
            return _Verdict(f"{plain}; nor in a private cgroup2 namespace: {fallback}{hint}")
        return _Verdict(None, "cgroup2-namespace")

    def _verdict(self) -> _Verdict:
        if not self._binary:
            return _Verdict(f"{self.name} is not installed (apt install {self.name}, or put "
                            "it on PATH)")
        if self._binary not in self._probes:
            self._probes[self._binary] = self._probe()
        return self._probes[self._binary]

    def available(self) -> str | None:
        return self._verdict().reason

    @property
    def mode(self) -> Mode:
        """``plain``, or ``cgroup2-namespace`` where the host refuses the runtime as it is."""
        return self._verdict().mode

    def cgroup_limits(self) -> bool:
        """Whether the memory and pids limits of a run apply: only as root and with cgroups
        (rootless on cgroup v1, or in the namespace fallback, there is nothing to set them)."""
        return os.geteuid() == 0 and self.mode == "plain"

    def version(self) -> str | None:
        if not self._binary:
            return None
        out = run_cmd([self._binary, "--version"], 10, f"{self.name} --version")
        match = re.search(r"version\s+(\S+)", out.stdout)
        return match.group(1) if match else first_line(out.stdout) or None

    def info(self) -> RuntimeInfo:
        reason = self.available()
        if reason:
            return RuntimeInfo(self.name, "oci", False, version=self.version(),
                               endpoint=self._binary, reason=reason)
        limits = self.cgroup_limits()
        note = None if limits else NAMESPACE_NOTE if self.mode == "cgroup2-namespace" \
            else ROOTLESS_NOTE
        return RuntimeInfo(self.name, "oci", True, version=self.version(),
                           endpoint=self._binary, cgroup_limits=limits, note=note)

    def has_image(self, image: str) -> bool:
        return rootfs_ready(image)

    def _write_config(self, bundle: Path, rootfs: Path, args: list[str], network: str,
                      spec: RunSpec | None, mode: Mode) -> None:
        rootless = os.geteuid() != 0
        with tempfile.TemporaryDirectory(prefix="forge-spec-") as tmp:
            out = run_cmd([self.binary, "spec", *(["--rootless"] if rootless else []),
                           "--bundle", tmp], 10, f"{self.name} spec")
            if out.returncode != 0:
                raise EngineError(f"{self.name} spec failed: {first_line(out.stderr)}")
            config: dict[str, Any] = json.loads((Path(tmp) / "config.json").read_text())
        process = config["process"]
        process.update(args=args, terminal=False, noNewPrivileges=True)
        process["capabilities"] = {k: [] for k in process.get("capabilities", {})}
        config["root"] = {"path": str(rootfs), "readonly": True}
        config["hostname"] = "forge"
        linux = config.setdefault("linux", {})
        namespaces = [ns for ns in linux.get("namespaces", []) if ns.get("type") != "network"]
        if network != "host":  # a rootless spec has no network namespace: --network none
            namespaces.append({"type": "network"})  # means one of its own, as for root
        linux["namespaces"] = namespaces
        if rootless and mode == "cgroup2-namespace":
            # the helper's user namespace maps only its root (0) to us: the container's
            # mapping refers to that 0, not to our uid, which does not exist in there
            linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
            linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
        if spec is not None and not rootless and mode == "plain":
            linux["resources"] = {**linux.get("resources", {}),
                                  "memory": {"limit": spec.memory_limit_bytes},
                                  "pids": {"limit": spec.pids_limit}}
        (bundle / "config.json").write_text(json.dumps(config))

    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        if self.available():
            raise RuntimeUnavailable(f"{self.name}: {self.available()}")
        if not rootfs_ready(spec.image):
            raise RuntimeUnavailable(f"{self.name}: no bundle for {spec.image}; run "
                                     "`forge image prepare` first")
        run_dir = run_dir_for(spec, ctx.run_id, self.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._write_config(run_dir, rootfs_dir(spec.image).resolve(), list(spec.command),
                           spec.network, spec, self.mode)
        self._run_dirs.append(run_dir)
        if self.mode == "cgroup2-namespace" and self._helper is None:
            self._helper = self._start_helper()

    # -- store usage (StoreUsage: the disk benchmark) --------------------------------------
    def store_usage(self, image: str) -> StoreReport:
        """No image store: forge's bundle is it, and its rootfs is the image."""
        return StoreReport({}, str(bundle_root(image)),
                           image_dirs={image: str(rootfs_dir(image))})

    @contextlib.contextmanager
    def container_footprint(self, image: str, ctx: RunContext) -> Iterator[Footprint]:
        """A run adds only a directory with config.json: every container shares the bundle's
        rootfs read-only (no copy, no writable layer)."""
        root = bundle_root(image)
        # A run id of its own: the run dir is named after it (plus the settings), so it can
        # be found by that prefix and removed without touching the dir a startup measurement
        # of the same run (compare) may be using.
        own = RunContext(run_id=f"{ctx.run_id}-disk", owner=ctx.owner)
        try:
            self.prepare(RunSpec(image), own)
            made = sorted((root / "runs").glob(f"{own.run_id}*"))
            if len(made) != 1:
                raise EngineError(f"{self.name}: expected one run directory for {own.run_id} "
                                  f"under {root / 'runs'}, found {len(made)}")
            yield Footprint(made[0].name, {"bundle_dir_bytes": str(made[0])})
        finally:
            for leftover in (root / "runs").glob(f"{own.run_id}*"):
                shutil.rmtree(leftover, ignore_errors=True)

    def _in_namespace(self) -> NamespaceHelper | None:
        if self.mode != "cgroup2-namespace":
            return None
        if self._helper is None:
            raise RuntimeUnavailable(f"{self.name}: the namespace helper is not running "
                                     "(prepare() starts it)")
        return self._helper

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        run_dir = run_dir_for(spec, ctx.run_id, self.name)
        argv = self._run_argv(self.mode, "--bundle", str(run_dir), oci_container_id(ctx, seq))
        helper = self._in_namespace()
        if helper is None:
            total = timed_cmd(argv, self.timeout_s, f"{self.name} run", self.clock)
        else:  # timed by the helper, around the crun child only (see nshelper)
            total = float(helper.request("timed", argv, self.timeout_s,
                                         f"{self.name} run")["ms"])
        return Sample(total, {"run": total})

    def daemon_pids(self) -> list[int]:
        return []  # no daemon: that is the point of a bare OCI runtime

    def start_detached(self, spec: RunSpec, ctx: RunContext, seq: int) -> str:
        cid = oci_container_id(ctx, seq)
        argv = self._run_argv(self.mode, "--detach", "--bundle",
                              str(run_dir_for(spec, ctx.run_id, self.name)), cid)
        helper = self._in_namespace()
        if helper is not None:
            doc = helper.request("detach", argv, self.timeout_s, f"{self.name} run --detach")
            code, message = int(doc["rc"]), str(doc["stderr"])
        else:
            # the container inherits runc's stdio: a pipe would never reach EOF, so use a file
            with tempfile.TemporaryFile() as err:
                try:
                    code = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=err,
                                          timeout=self.timeout_s, check=False).returncode
                except subprocess.TimeoutExpired:
                    raise EngineTimeout(f"{self.name} run --detach did not finish within "
                                        f"{self.timeout_s:g} s") from None
                err.seek(0)
                message = err.read().decode(errors="replace")
        if code != 0:
            raise EngineError(f"{self.name} run --detach failed: {first_line(message)}")
        return cid

    def container_pid(self, cid: str) -> int:
        out = run_cmd([*self._base(), "state", cid], self.timeout_s, f"{self.name} state")
        if out.returncode != 0:
            raise EngineError(f"{self.name} state failed: {first_line(out.stderr)}")
        return int(json.loads(out.stdout)["pid"])

    def remove_container(self, cid: str) -> None:
        # state, list and delete need no namespace: the state lives under the same /run
        with contextlib.suppress(EngineError):  # else the sweep by prefix catches it later
            run_cmd([*self._base(), "delete", "-f", cid], self.timeout_s,
                    f"{self.name} delete")

    def _list_ids(self) -> list[str]:
        out = run_cmd([*self._base(), "list", "--format", "json"], self.timeout_s,
                      f"{self.name} list")
        if out.returncode != 0:
            return []
        return [c.get("id", "") for c in json.loads(out.stdout or "null") or []]

    def cleanup(self, run_id: str | None = None) -> int:
        if not self._binary:
            return 0
        removed = 0
        try:
            listed = self._list_ids()
            ids = [i for i in listed if i.startswith(OCI_ID_PREFIX)]
            suffix = f"-{run_id.rsplit('-', 1)[-1]}-" if run_id else None
            for cid in ids:
                if (suffix and suffix not in cid) or (not suffix and not oci_is_leftover(cid)):
                    continue
                removed += run_cmd([*self._base(), "delete", "-f", cid], self.timeout_s,
                                   f"{self.name} delete").returncode == 0
            removed += self._remove_half_made(set(listed), suffix)
        except (EngineError, ValueError, OSError):
            return removed
        return removed

    def state_dir(self) -> Path:
        """The state root this runtime's containers live under (its default for root)."""
        return state_root(self.name) or Path("/run") / self.name

    def half_made(self, listed: set[str]) -> list[Path]:
        """State directories a ``run`` killed mid-create leaves behind: made, with its
        exec.fifo, before state.json was written; ``list`` skips them and ``delete`` cannot
        find them, so without this they stay until reboot."""
        try:
            entries = list(self.state_dir().iterdir())
        except OSError:
            return []
        return [p for p in entries if p.name.startswith(OCI_ID_PREFIX)
                and p.name not in listed and not (p / "state.json").exists()]

    def _remove_half_made(self, listed: set[str], suffix: str | None) -> int:
        ours = [p for p in self.half_made(listed)
                if (suffix in p.name if suffix else oci_is_leftover(p.name))]
        if not ours:
            return 0
        # a live `runc run ID` (a run's create in flight) has such a directory for a moment
        # too; its id is in that process's argv
        busy = _ids_in_argv({p.name for p in ours})
        removed = 0
        for path in ours:
            if path.name not in busy and not (path / "state.json").exists():
                shutil.rmtree(path, ignore_errors=True)
                removed += not path.exists()
        return removed

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        for run_dir in self._run_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
        self._run_dirs.clear()
