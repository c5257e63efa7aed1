"""Bare OCI runtimes (runc, crun): ``<runtime> run`` on a bundle made from the image's rootfs.

The rootfs is cached under ``$FORGE_HOME/bundles/<image>/rootfs`` (filled by image.py from an
engine's export, or from the host's static busybox); each run writes its own config.json.
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
from pathlib import Path
from typing import Any, ClassVar

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
from forge_desktop.runtimes.base import oci_container_id, oci_owner_alive
from forge_desktop.runtimes.common import Clock, first_line, run_cmd, timed_cmd

_SAFE_RE = re.compile(r"[^a-zA-Z0-9._-]+")


def bundle_root(image: str) -> Path:
    return forge_home() / "bundles" / _SAFE_RE.sub("_", image)


def rootfs_dir(image: str) -> Path:
    return bundle_root(image) / "rootfs"


def run_dir_for(spec: RunSpec, run_id: str) -> Path:
    """One bundle config per run and container settings (command, network)."""
    key = zlib.crc32(json.dumps([spec.command, spec.network]).encode())
    return bundle_root(spec.image) / "runs" / f"{run_id}-{key:08x}"


def rootfs_ready(image: str) -> bool:
    return (bundle_root(image) / "source.json").is_file()


class OciRuntime:
    kind: RuntimeKind = "oci"
    _probes: ClassVar[dict[str, str | None]] = {}
    """Probe verdicts per binary path, kept for the life of the process."""

    def __init__(self, name: str, timeout_s: float = 30.0,
                 clock: Clock = time.perf_counter) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.clock = clock
        self._binary = shutil.which(name)
        self._run_dirs: list[Path] = []

    @property
    def binary(self) -> str:
        if not self._binary:
            raise RuntimeUnavailable(f"{self.name}: {self.available()}")
        return self._binary

    def _probe(self) -> str | None:
        """Run a container whose command does not exist: reaching exec proves the runtime can
        set up namespaces and cgroups here; anything earlier is the reason it cannot."""
        assert self._binary
        with tempfile.TemporaryDirectory(prefix="forge-probe-") as tmp:
            bundle = Path(tmp)
            (bundle / "rootfs").mkdir()
            self._write_config(bundle, Path("rootfs"), ["/forge-probe-missing"], "none", None)
            cid = f"{OCI_ID_PREFIX}probe-{os.getpid()}-{int(time.time() * 1000)}"
            try:
                out = run_cmd([self._binary, "run", "--bundle", str(bundle), cid],
                              min(self.timeout_s, 15.0), f"{self.name} probe")
            except EngineError as exc:
                return str(exc)
            finally:
                run_cmd([self._binary, "delete", "-f", cid], 10, f"{self.name} delete")
        err = out.stderr.lower()
        if "no such file" in err or "not found" in err or "forge-probe-missing" in err:
            return None
        return (f"{self.name} cannot run containers here: {first_line(out.stderr)}"
                if out.returncode else None)

    def available(self) -> str | None:
        if not self._binary:
            return f"{self.name} is not installed (apt install {self.name}, or put it on PATH)"
        if self._binary not in self._probes:
            self._probes[self._binary] = self._probe()
        return self._probes[self._binary]

    def version(self) -> str | None:
        if not self._binary:
            return None
        out = run_cmd([self._binary, "--version"], 10, f"{self.name} --version")
        match = re.search(r"version\s+(\S+)", out.stdout)
        return match.group(1) if match else first_line(out.stdout) or None

    def info(self) -> RuntimeInfo:
        reason = self.available()
        return RuntimeInfo(self.name, "oci", reason is None, version=self.version(),
                           endpoint=self._binary, reason=reason)

    def has_image(self, image: str) -> bool:
        return rootfs_ready(image)

    def _write_config(self, bundle: Path, rootfs: Path, args: list[str], network: str,
                      spec: RunSpec | None) -> None:
        rootless = ["--rootless"] if os.geteuid() != 0 else []
        with tempfile.TemporaryDirectory(prefix="forge-spec-") as tmp:
            out = run_cmd([self.binary, "spec", *rootless, "--bundle", tmp], 10,
                          f"{self.name} spec")
            if out.returncode != 0:
                raise EngineError(f"{self.name} spec failed: {first_line(out.stderr)}")
            config: dict[str, Any] = json.loads((Path(tmp) / "config.json").read_text())
        process = config["process"]
        process.update(args=args, terminal=False, noNewPrivileges=True)
        process["capabilities"] = {k: [] for k in process.get("capabilities", {})}
        config["root"] = {"path": str(rootfs), "readonly": True}
        config["hostname"] = "forge"
        linux = config.setdefault("linux", {})
        if network == "host":
            linux["namespaces"] = [ns for ns in linux.get("namespaces", [])
                                   if ns.get("type") != "network"]
        if spec is not None and os.geteuid() == 0:
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
        run_dir = run_dir_for(spec, ctx.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._write_config(run_dir, rootfs_dir(spec.image).resolve(), list(spec.command),
                           spec.network, spec)
        self._run_dirs.append(run_dir)

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        run_dir = run_dir_for(spec, ctx.run_id)
        cid = oci_container_id(ctx, seq)
        total = timed_cmd([self.binary, "run", "--bundle", str(run_dir), cid], self.timeout_s,
                          f"{self.name} run", self.clock)
        return Sample(total, {"run": total})

    def daemon_pids(self) -> list[int]:
        return []  # no daemon: that is the point of a bare OCI runtime

    def start_detached(self, spec: RunSpec, ctx: RunContext, seq: int) -> str:
        run_dir = run_dir_for(spec, ctx.run_id)
        cid = oci_container_id(ctx, seq)
        # the container inherits runc's stdio: a pipe would never reach EOF, so use a file
        with tempfile.TemporaryFile() as err:
            try:
                code = subprocess.run(
                    [self.binary, "run", "--detach", "--bundle", str(run_dir), cid],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    timeout=self.timeout_s, check=False).returncode
            except subprocess.TimeoutExpired:
                raise EngineTimeout(f"{self.name} run --detach did not finish within "
                                  f"{self.timeout_s:g} s") from None
            if code != 0:
                err.seek(0)
                raise EngineError(f"{self.name} run --detach failed: "
                                  f"{first_line(err.read().decode(errors='replace'))}")
        return cid

    def container_pid(self, cid: str) -> int:
        out = run_cmd([self.binary, "state", cid], self.timeout_s, f"{self.name} state")
        if out.returncode != 0:
            raise EngineError(f"{self.name} state failed: {first_line(out.stderr)}")
        return int(json.loads(out.stdout)["pid"])

    def remove_container(self, cid: str) -> None:
        with contextlib.suppress(EngineError):  # else the sweep by prefix catches it later
            run_cmd([self.binary, "delete", "-f", cid], self.timeout_s, f"{self.name} delete")

    def _list_ids(self) -> list[str]:
        out = run_cmd([self.binary, "list", "--format", "json"], self.timeout_s,
                      f"{self.name} list")
        if out.returncode != 0:
            return []
        return [c.get("id", "") for c in json.loads(out.stdout or "null") or []]

    def cleanup(self, run_id: str | None = None) -> int:
        if not self._binary:
            return 0
        removed = 0
        try:
            ids = [i for i in self._list_ids() if i.startswith(OCI_ID_PREFIX)]
            suffix = f"-{run_id.rsplit('-', 1)[-1]}-" if run_id else None
            for cid in ids:
                if (suffix and suffix not in cid) or (not suffix and oci_owner_alive(cid)):
                    continue
                removed += run_cmd([self.binary, "delete", "-f", cid], self.timeout_s,
                                   f"{self.name} delete").returncode == 0
        except (EngineError, ValueError):
            return removed
        return removed

    def close(self) -> None:
        for run_dir in self._run_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
        self._run_dirs.clear()
