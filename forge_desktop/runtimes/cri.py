"""The Kubernetes path: a CRI runtime (containerd, CRI-O) driven over the CRI v1 gRPC API as
the kubelet drives it, a pod sandbox first, then a container in it.

Which runtime: ``CONTAINER_RUNTIME_ENDPOINT`` if set, else the first of the usual sockets whose
CRI answers; else, as root where the ``containerd`` binary exists, a private containerd with
the CRI plugin, on root, state and socket of forge's own (``$FORGE_HOME/cri``, ``/run/forge-cri``),
started when a run needs it and stopped when the run closes the adapter, as the temporary podman
service is. The user's containerd and its config are never touched. The private containerd's
sandbox (pause) image is made from the benchmark image (its layers, ``sleep`` as entrypoint) and
imported into the ``k8s.io`` namespace with ``ctr``: no registry is needed.

Pods use the host network (no CNI): each result says ``network: host``, which is not
like-for-like with the other runtimes' ``--network none``. Phases of a sample: ``sandbox``
(RunPodSandbox), ``create``, ``start``, ``ready`` (until the container is observed running or
exited, as the Kubernetes pod-startup SLI counts "observed"), ``stop`` (container and sandbox)
and ``remove`` (container and sandbox). Sandboxes and containers carry forge's labels and are
swept like the engines' containers. Every call has a deadline; one that passes marks the runtime
hung (no later call waits again), a lost connection makes it unavailable.

grpc is imported only when a call is made: the CLI's start-up stays quick.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

from forge_desktop import safetar
from forge_desktop.config import forge_home
from forge_desktop.errors import (
    EngineError,
    EngineTimeout,
    ForgeError,
    ImageError,
    RuntimeUnavailable,
)
from forge_desktop.models import (
    LABEL_OWNER,
    LABEL_RUN,
    RunContext,
    RunSpec,
    RuntimeInfo,
    RuntimeKind,
    Sample,
)
from forge_desktop.procfs import cmdline
from forge_desktop.runtimes.base import is_leftover
from forge_desktop.runtimes.common import (
    Clock,
    first_line,
    ms,
    run_cmd,
    setpriv_with_pdeathsig,
)

if TYPE_CHECKING:
    import grpc

    from forge_desktop.runtimes.cri_api import cri_pb2 as pb
    from forge_desktop.runtimes.cri_api.cri_pb2_grpc import ImageServiceStub, RuntimeServiceStub

ENDPOINT_ENV = "CONTAINER_RUNTIME_ENDPOINT"
USER_SOCKETS = ("/run/containerd/containerd.sock", "/run/crio/crio.sock")
K8S_NAMESPACE = "k8s.io"
"""containerd's namespace of the CRI plugin: images must be there for pods to use them."""
PAUSE_IMAGE = "forge.local/forge-pause:latest"
PAUSE_COMMAND = ("sleep", "2147483647")
"""The sandbox's process: it only holds the pod's namespaces; StopPodSandbox SIGKILLs it."""
PROBE_TIMEOUT_S = 3.0
"""Asking a socket whether a CRI answers there (`forge runtimes`, choosing the endpoint)."""
START_TIMEOUT_S = 30.0
READY_POLL_S = 0.002
SHIM_PROBE_S = 1.0
"""Asking a shim's socket whether the shim still listens there (a local connect)."""
STOP_RACE_S = 2.0
"""How long a container whose StopContainer lost the race with its own exit may take to be
recorded exited (containerd handles the shim's exit event asynchronously)."""
NETWORK = "host"
NETWORK_NOTE = ("pods use the host network (no CNI): not like-for-like with the other "
                "runtimes' isolated network")
INSTALL_HINT = ("install containerd (`apt install containerd`, it comes with docker.io) and "
                "run forge as root, or set CONTAINER_RUNTIME_ENDPOINT to a CRI socket")


def _unix(address: str) -> str:
    return address if address.startswith("unix://") else f"unix://{address}"


def normalize_ref(image: str) -> str:
    """The name the CRI plugin stores an image under (docker's normalisation):
    ``busybox`` -> ``docker.io/library/busybox:latest``."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _goarch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


# -- OCI image archives (what `ctr images import` reads) -----------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"sha256:{hashlib.sha256(data).hexdigest()}", data


def write_oci_archive(dest: Path, name: str, config: dict[str, Any],
                      layers: list[tuple[dict[str, Any], Callable[[], IO[bytes]]]]
                      ) -> None:
    """An OCI image layout tar holding one image ``name``: its config, and ``layers`` as
    (descriptor, opener of the blob's bytes)."""
    config_digest, config_bytes = _blob(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": [d for d, _ in layers],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": manifest["mediaType"], "digest": manifest_digest,
        "size": len(manifest_bytes),
        "platform": {"architecture": config["architecture"], "os": config["os"]},
        "annotations": {"io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}}]}
    with tarfile.open(dest, "w") as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", json.dumps(index).encode())
        for digest, data in ((config_digest, config_bytes), (manifest_digest, manifest_bytes)):
            _add_bytes(tar, f"blobs/sha256/{digest.split(':', 1)[1]}", data)
        for desc, opener in layers:
            info = tarfile.TarInfo(f"blobs/sha256/{desc['digest'].split(':', 1)[1]}")
            info.size = int(desc["size"])
            with opener() as fh:
                tar.addfile(info, fh)


class _Exported:
    """An image as `ctr images export` wrote it: its config and layer descriptors."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        index = self.json("index.json")
        manifest = self._manifest(index["manifests"])
        self.config: dict[str, Any] = self.json(self._path(manifest["config"]["digest"]))
        self.layers: list[dict[str, Any]] = list(manifest["layers"])

    def _path(self, digest: str) -> str:
        return f"blobs/sha256/{digest.split(':', 1)[1]}"

    def json(self, member: str) -> Any:
        fh = self.tar.extractfile(member)
        if fh is None:
            raise ImageError(f"cri: exported image has no {member}")
        return json.loads(fh.read())

    def has(self, digest: str) -> bool:
        try:
            self.tar.getmember(self._path(digest))
        except KeyError:
            return False
        return True

    def _manifest(self, descs: list[dict[str, Any]]) -> dict[str, Any]:
        """The manifest for this host among ``descs`` (an index's entries, perhaps nested)."""
        arch = _goarch()
        for desc in descs:
            plat = desc.get("platform") or {}
            if plat and (plat.get("architecture") != arch or plat.get("os") != "linux"):
                continue
            if not self.has(desc["digest"]):
                continue
            doc: dict[str, Any] = self.json(self._path(desc["digest"]))
            if "manifests" in doc:
                return self._manifest(doc["manifests"])
            return doc
        raise ImageError(f"cri: the exported image has no manifest for linux/{arch}")

    def opener(self, desc: dict[str, Any]) -> Callable[[], IO[bytes]]:
        def open_blob() -> IO[bytes]:
            fh = self.tar.extractfile(self._path(desc["digest"]))
            if fh is None:
                raise ImageError(f"cri: exported image lacks layer {desc['digest']}")
            return fh
        return open_blob


# -- the private containerd ------------------------------------------------------------------
class PrivateContainerd:
    """containerd with its CRI plugin on forge's own root, state and socket, for one run.

    The root (images, snapshots) stays under ``$FORGE_HOME/cri`` between runs; the state (and
    the socket: its path must fit in 108 bytes) is under ``/run/forge-cri/<key of FORGE_HOME>``.
    Because both stay put, the containerd of the next run takes back the shims of a run that
    was killed (SIGKILL) and its sweep removes their sandboxes."""

    def __init__(self, timeout_s: float) -> None:
        home = forge_home().expanduser().resolve()
        key = hashlib.sha256(str(home).encode()).hexdigest()[:12]
        self.dir = home / "cri"
        self.root = self.dir / "root"
        self.config = self.dir / "containerd.toml"
        self.state = Path("/run/forge-cri") / key
        self.socket = self.state / "containerd.sock"
        self.pidfile = self.state / "forge-containerd.pid"
        self.log = self.dir / "containerd.log"
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tasks(self) -> Path:
        """containerd's task bundles (one directory per task) of the CRI namespace."""
        return self.state / "io.containerd.runtime.v2.task" / K8S_NAMESPACE

    def has_leftovers(self) -> bool:
        """Tasks (shims) of an earlier run are recorded in the state directory."""
        try:
            return any(self.tasks.iterdir())
        except OSError:
            return False

    def remove_unstarted_tasks(self) -> None:
        """Remove the task bundles that no shim serves and containerd cannot remove.

        A containerd killed during a StartContainer may leave the container's bundle written
        (its ``address`` naming the pod's shim) but the task never created: the runc shim's
        Create begins by writing ``runtime``, before it mounts anything. The next containerd
        loads such a bundle on the pod's shim and, once the sweep has stopped that shim, cleans
        it up with `containerd-shim-runc-v2 delete`, which fails on the missing ``runtime``
        (containerd 1.6: "failed to clean up after shim disconnected"): the bundle, and so the
        state directory, would stay for good. Without ``runtime`` nothing is mounted in it;
        one whose shim still answers is left to containerd. As containerd removes a bundle,
        its work directory under the root (which ``work`` links to) goes with it."""
        try:
            bundles = list(self.tasks.iterdir())
        except OSError:
            return
        for bundle in bundles:
            if (bundle / "runtime").exists() or _shim_answers(bundle / "address"):
                continue
            with contextlib.suppress(OSError):
                work = Path(os.readlink(bundle / "work"))
                if work.is_relative_to(self.root):
                    shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(bundle, ignore_errors=True)

    def write_config(self) -> None:
        """``containerd config default`` with the CRI plugin enabled, forge's paths, and the
        pause image made from the benchmark image as sandbox image."""
        out = run_cmd(["containerd", "config", "default"], min(self.timeout_s, 15.0),
                      "containerd config default")
        if out.returncode != 0:
            raise RuntimeUnavailable(f"cri: `containerd config default` failed: "
                                     f"{first_line(out.stderr)}")
        lines, section = [], ""
        for line in out.stdout.splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                section = stripped
            key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
            indent = line[:len(line) - len(line.lstrip())]
            if not section and key == "disabled_plugins":
                line = "disabled_plugins = []"
            elif not section and key == "root":
                line = f'root = "{self.root}"'
            elif not section and key == "state":
                line = f'state = "{self.state}"'
            elif section == "[grpc]" and key == "address":
                line = f'{indent}address = "{self.socket}"'
            elif key == "sandbox_image":
                line = f'{indent}sandbox_image = "{PAUSE_IMAGE}"'
            elif key == "restrict_oom_score_adj":
                # the pause process gets oom_score_adj -998, which needs CAP_SYS_RESOURCE
                # (root lacks it in containers and VMs like ours: runc then fails with "can't
                # get final child's PID from pipe"); restricted, it is kept >= containerd's own
                line = f"{indent}restrict_oom_score_adj = true"
            lines.append(line)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.config)

    def _ours(self, pid: int) -> bool:
        return str(self.config) in " ".join(cmdline(pid))

    def stop_stale(self) -> None:
        """A private containerd of this FORGE_HOME still running (its forge was killed and
        setpriv was missing): stop it, it would hold the root's lock."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        if pid > 0 and self._ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(10)

    def start(self, ping: Callable[[str, float], str | None]) -> None:
        self.stop_stale()
        self.write_config()
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = ["containerd", "--config", str(self.config)]
        setpriv = setpriv_with_pdeathsig()
        if setpriv:
            # as the temporary podman service: ends with forge even if forge is SIGKILLed
            # (its shims survive, and the next run's containerd takes them back and sweeps)
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        self.pidfile.write_text(str(self.proc.pid))
        deadline = time.monotonic() + min(self.timeout_s, START_TIMEOUT_S)
        why: str | None = "no socket appeared"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                why = f"it exited with status {self.proc.returncode}"
                break
            if self.socket.exists():
                why = ping(self.address, 2.0)
                if why is None:
                    return
            time.sleep(0.05)
        tail = self._log_tail()
        self.stop(kill=True)
        raise RuntimeUnavailable(f"cri: could not start a private containerd: {why}"
                                 + (f" ({tail})" if tail else "") + f"; see {self.log}")

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [ln for ln in lines if "level=fatal" in ln or "level=error" in ln]
        return first_line((errors or lines or [""])[-1])

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self, kill: bool = False) -> None:
        """SIGTERM and a wait, or at once SIGKILL (a frozen containerd never handles TERM)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        shut_down = False
        if proc.poll() is None:
            if not kill:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                    shut_down = True
                except subprocess.TimeoutExpired:
                    kill = True
            if kill:
                # setpriv exec()s containerd, so the pid is containerd's own
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            self.pidfile.unlink()
        if shut_down:
            # only after a clean shutdown: a containerd that died or was killed may have left
            # a shim still starting, which the next run's containerd takes back
            self.remove_unstarted_tasks()
        if not self.has_leftovers():
            # nothing for the next containerd to take back: leave nothing in /run either
            shutil.rmtree(self.state, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.state.parent.rmdir()  # only when no other FORGE_HOME's state is there


def _shim_answers(address_file: Path) -> bool:
    """A shim listens at the address recorded in a task's bundle (``unix:///run/...``, or
    ``@name`` for an abstract socket)."""
    try:
        address = address_file.read_text().strip().removeprefix("unix://")
    except OSError:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(SHIM_PROBE_S)
            sock.connect(address)
    except OSError:
        return False
    return True


# -- the adapter -----------------------------------------------------------------------------
class CriRuntime:
    name = "cri"
    kind: RuntimeKind = "engine"
    explicit_only = True
    """Measured only when named (``-r cri``): its pods are not like-for-like (host network)
    and a private containerd costs seconds per run."""

    def __init__(self, timeout_s: float = 30.0, clock: Clock = time.perf_counter) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self.hung = False
        self._endpoint: str | None = None
        self._private: PrivateContainerd | None = None
        self._channel: grpc.Channel | None = None
        self._rt: RuntimeServiceStub | None = None
        self._img: ImageServiceStub | None = None
        self._version: pb.VersionResponse | None = None
        self._reason: str | None = None
        self._checked = False

    # -- endpoint ---------------------------------------------------------------------------
    @staticmethod
    def ping(address: str, timeout_s: float) -> str | None:
        """None when a CRI v1 runtime answers Version at ``address``, else why not."""
        import grpc

        from forge_desktop.runtimes.cri_api import cri_pb2
        from forge_desktop.runtimes.cri_api.cri_pb2_grpc import RuntimeServiceStub

        with grpc.insecure_channel(_unix(address)) as channel:
            try:
                RuntimeServiceStub(channel).Version(  # type: ignore[no-untyped-call]
                    cri_pb2.VersionRequest(version="v1"),
                                                    timeout=timeout_s)
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    return f"{address} answers, but not the CRI v1 API (is its CRI plugin off?)"
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return f"{address} did not answer within {timeout_s:g} s"
                return f"{address}: {first_line(exc.details() or str(code))}"
        return None

    def _choose(self) -> tuple[str | None, str | None]:
        """(endpoint, None) for a user's CRI socket that answers; (None, None) when a private
        containerd will be started; (None, reason) when neither can be."""
        env = os.environ.get(ENDPOINT_ENV)
        if env:
            why = self.ping(env, min(self.timeout_s, PROBE_TIMEOUT_S))
            return (_unix(env), None) if why is None else (None, f"{ENDPOINT_ENV}: {why}")
        for sock in USER_SOCKETS:
            if os.path.exists(sock) and self.ping(sock, min(self.timeout_s,
                                                            PROBE_TIMEOUT_S)) is None:
                return _unix(sock), None
        if not shutil.which("containerd"):
            return None, f"no CRI socket answers and containerd is not installed; {INSTALL_HINT}"
        if os.geteuid() != 0:
            return None, ("no CRI socket answers ("
                          + ", ".join(USER_SOCKETS) + f", {ENDPOINT_ENV}) and a private "
                          "containerd needs root; run forge as root or set " + ENDPOINT_ENV)
        if not shutil.which("ctr"):
            return None, ("a private containerd needs ctr to import its images "
                          "(apt install containerd)")
        return None, None

    @property
    def endpoint(self) -> str | None:
        return self._private.address if self._private is not None else self._endpoint

    def _connect(self) -> tuple[RuntimeServiceStub, ImageServiceStub]:
        if self.hung:
            raise EngineTimeout(f"cri: {self._hung_reason()}")
        if self._rt is not None and self._img is not None:
            return self._rt, self._img
        if self._checked and self._reason:
            raise RuntimeUnavailable(f"cri: {self._reason}")
        self._checked = True
        try:
            import grpc

            from forge_desktop.runtimes.cri_api.cri_pb2_grpc import (
                ImageServiceStub,
                RuntimeServiceStub,
            )
        except ImportError as exc:  # pragma: no cover - dependencies of forge
            self._reason = f"grpcio or protobuf is missing ({exc}); pip install grpcio protobuf"
            raise RuntimeUnavailable(f"cri: {self._reason}") from None
        endpoint, why = self._choose()
        if why:
            self._reason = why
            raise RuntimeUnavailable(f"cri: {why}")
        if endpoint is None:
            private = PrivateContainerd(self.timeout_s)
            private.start(self.ping)
            self._private = private
        else:
            self._endpoint = endpoint
        address = self.endpoint
        assert address is not None
        self._channel = grpc.insecure_channel(address)
        self._rt = RuntimeServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._img = ImageServiceStub(self._channel)  # type: ignore[no-untyped-call]
        return self._rt, self._img

    def _hung_reason(self) -> str:
        return (f"{self.endpoint} did not answer within {self.timeout_s:g} s earlier in this "
                "run; it is not asked again (is containerd hung?)")

    def engine_error(self, what: str, exc: BaseException,
                     timeout_s: float | None = None) -> EngineError | RuntimeUnavailable:
        """The one mapping of a failed gRPC call: a deadline marks the runtime hung, a lost
        connection makes it unavailable, anything else is that call's error."""
        import grpc

        code = exc.code() if isinstance(exc, grpc.RpcError) else None
        details = first_line(exc.details() if isinstance(exc, grpc.RpcError)
                             else str(exc)) or str(code)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            self.hung = True
            return EngineTimeout(f"cri: {what} did not answer within "
                                 f"{timeout_s or self.timeout_s:g} s")
        if code == grpc.StatusCode.UNAVAILABLE:
            private = " (forge's private containerd)" if self._private is not None else ""
            return RuntimeUnavailable(f"cri: {self.endpoint}{private} stopped answering during "
                                      f"{what}: did it stop or crash? ({details})")
        return EngineError(f"cri: {what} failed: {details}")

    def call(self, what: str, method: str, request: Any, *, image: bool = False,
             timeout_s: float | None = None) -> Any:
        rt, img = self._connect()
        stub: Any = img if image else rt
        timeout = timeout_s or self.timeout_s
        try:
            return getattr(stub, method)(request, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - grpc.RpcError, mapped once
            raise self.engine_error(what, exc, timeout) from None

    @staticmethod
    def _pb() -> Any:
        from forge_desktop.runtimes.cri_api import cri_pb2

        return cri_pb2

    # -- Runtime --------------------------------------------------------------------------
    def available(self) -> str | None:
        if self.hung:
            return self._hung_reason()
        if self._rt is not None:
            return None
        try:
            import grpc  # noqa: F401
        except ImportError:
            return "grpcio is not installed (pip install grpcio protobuf)"
        return self._choose()[1]

    def info(self) -> RuntimeInfo:
        reason = self.available()
        if reason:
            return RuntimeInfo(self.name, "engine", False, endpoint=self.endpoint, reason=reason)
        if self._rt is None and self._choose()[0] is None:
            # do not start a containerd only to list it
            out = run_cmd(["containerd", "--version"], 10, "containerd --version")
            parts = out.stdout.split()
            version = f"containerd {parts[2]}" if len(parts) >= 3 else None
            return RuntimeInfo(self.name, "engine", True, version=version,
                               endpoint="private containerd (started per run, "
                                        f"state under /run/forge-cri, root under "
                                        f"{forge_home() / 'cri'})",
                               cgroup_limits=True, note=f"network {NETWORK}: {NETWORK_NOTE}",
                               network=NETWORK)
        v = self.version()
        return RuntimeInfo(self.name, "engine", True,
                           version=f"{v.runtime_name} {v.runtime_version}",
                           endpoint=self.endpoint, cgroup_limits=True,
                           note=f"network {NETWORK}: {NETWORK_NOTE}", network=NETWORK)

    def version(self) -> Any:
        if self._version is None:
            self._version = self.call("Version", "Version",
                                      self._pb().VersionRequest(version="v1"))
        return self._version

    def _is_containerd(self) -> bool:
        return self._private is not None or self.version().runtime_name == "containerd"

    # -- images (ImageSource) ---------------------------------------------------------------
    def has_image(self, image: str) -> bool:
        pb_ = self._pb()
        resp = self.call(f"ImageStatus {image}", "ImageStatus",
                         pb_.ImageStatusRequest(image=pb_.ImageSpec(image=image)), image=True)
        return bool(resp.image.id)

    def image_layers(self, image: str) -> list[str]:
        """The image's layer diff ids (as docker and podman report them), from the verbose
        status's image config; its id (the config digest) where the runtime gives none."""
        pb_ = self._pb()
        resp = self.call(f"ImageStatus {image}", "ImageStatus",
                         pb_.ImageStatusRequest(image=pb_.ImageSpec(image=image), verbose=True),
                         image=True)
        if not resp.image.id:
            raise ImageError(f"cri: no image {image}")
        try:
            spec = json.loads(resp.info["info"])["imageSpec"]
            return [str(d) for d in spec["rootfs"]["diff_ids"]]
        except (KeyError, ValueError, TypeError):
            return [str(resp.image.id)]

    def pull(self, image: str, timeout_s: float, tls_verify: bool = True) -> None:
        pb_ = self._pb()
        self.call(f"PullImage {image}", "PullImage",
                  pb_.PullImageRequest(image=pb_.ImageSpec(image=image)), image=True,
                  timeout_s=timeout_s)

    def _ctr(self, *args: str, timeout_s: float | None = None) -> None:
        if not self._is_containerd():
            raise ImageError(f"cri: {self.endpoint} is not containerd; load images into it "
                             "with its own tools (forge imports only into containerd)")
        address = (self.endpoint or "").removeprefix("unix://")
        what = f"ctr images {args[0]}"
        out = run_cmd(["ctr", "--address", address, "--namespace", K8S_NAMESPACE, "images",
                       *args], timeout_s or self.timeout_s, what)
        if out.returncode != 0:
            raise ImageError(f"cri: {what} failed: {first_line(out.stderr)}")

    def _import_archive(self, archive: Path) -> None:
        self._ctr("import", str(archive), timeout_s=max(self.timeout_s, 60.0))

    def import_tar(self, tar_path: Path, image: str) -> None:
        """Import a root filesystem tar (image.py's busybox) as ``image`` into ``k8s.io``."""
        self._connect()
        digest = _sha256_file(tar_path)
        config = {"architecture": _goarch(), "os": "linux",
                  "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                     "/sbin:/bin"], "Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [digest]}}
        def open_layer() -> IO[bytes]:
            return open(tar_path, "rb")  # noqa: SIM115 - write_oci_archive closes it

        layer: dict[str, Any] = {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                 "digest": digest, "size": tar_path.stat().st_size}
        with tempfile.TemporaryDirectory(prefix="forge-cri-") as tmp:
            archive = Path(tmp) / "image.tar"
            write_oci_archive(archive, normalize_ref(image), config,
                              [(layer, open_layer)])
            self._import_archive(archive)

    @contextlib.contextmanager
    def _exported(self, image: str) -> Iterator[_Exported]:
        with tempfile.TemporaryDirectory(prefix="forge-cri-") as tmp:
            out = Path(tmp) / "export.tar"
            self._ctr("export", "--platform", f"linux/{_goarch()}", str(out),
                      normalize_ref(image), timeout_s=max(self.timeout_s, 60.0))
            with tarfile.open(out) as tar:
                yield _Exported(tar)

    def export_rootfs(self, image: str, dest: Path, ctx: RunContext) -> None:
        """The image's layers, unpacked in order into ``dest`` (an OCI bundle's rootfs)."""
        with self._exported(image) as exported:
            for desc in exported.layers:
                with exported.opener(desc)() as blob, tarfile.open(fileobj=blob,
                                                                    mode="r:*") as layer:
                    safetar.extract(layer, dest)

    def _ensure_pause(self, image: str) -> None:
        """The private containerd's sandbox image: the benchmark image's layers with a
        process that only sleeps (no registry, no registry.k8s.io/pause)."""
        pb_ = self._pb()
        if self.call("ImageStatus pause", "ImageStatus",
                     pb_.ImageStatusRequest(image=pb_.ImageSpec(image=PAUSE_IMAGE)),
                     image=True).image.id:
            return
        with self._exported(image) as exported, \
                tempfile.TemporaryDirectory(prefix="forge-cri-") as tmp:
            config = dict(exported.config)
            inner = dict(config.get("config") or {})
            inner.update(Entrypoint=list(PAUSE_COMMAND), Cmd=None)
            inner.setdefault("Env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                     "/sbin:/bin"])
            config["config"] = inner
            config.setdefault("architecture", _goarch())
            config.setdefault("os", "linux")
            archive = Path(tmp) / "pause.tar"
            write_oci_archive(archive, PAUSE_IMAGE, config,
                              [(d, exported.opener(d)) for d in exported.layers])
            self._import_archive(archive)

    # -- measuring ------------------------------------------------------------------------
    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        self._connect()
        if self._private is not None:
            self._ensure_pause(spec.image)

    def _sandbox_config(self, ctx: RunContext, seq: int) -> Any:
        pb_ = self._pb()
        token = ctx.run_id.rsplit("-", 1)[-1]
        host_ns = pb_.NamespaceOption(network=pb_.NODE, pid=pb_.CONTAINER, ipc=pb_.POD)
        return pb_.PodSandboxConfig(
            metadata=pb_.PodSandboxMetadata(name=f"forge-{token}-{seq}", namespace="forge",
                                            uid=f"{ctx.run_id}-{seq}", attempt=0),
            labels=ctx.labels(),
            linux=pb_.LinuxPodSandboxConfig(
                security_context=pb_.LinuxSandboxSecurityContext(namespace_options=host_ns)))

    def _container_config(self, spec: RunSpec, ctx: RunContext, command: list[str]) -> Any:
        pb_ = self._pb()
        return pb_.ContainerConfig(
            metadata=pb_.ContainerMetadata(name="bench", attempt=0),
            image=pb_.ImageSpec(image=spec.image),
            command=command,
            labels=ctx.labels(),
            linux=pb_.LinuxContainerConfig(
                resources=pb_.LinuxContainerResources(
                    memory_limit_in_bytes=spec.memory_limit_bytes),
                security_context=pb_.LinuxContainerSecurityContext(
                    capabilities=pb_.Capability(drop_capabilities=["ALL"]),
                    readonly_rootfs=True, no_new_privs=True,
                    namespace_options=pb_.NamespaceOption(network=pb_.NODE,
                                                          pid=pb_.CONTAINER, ipc=pb_.POD))))

    def _run_pod(self, spec: RunSpec, ctx: RunContext, seq: int, command: list[str],
                 phases: dict[str, float]) -> tuple[str, str]:
        """A sandbox and a started container in it; their ids. Times each call into
        ``phases``; on failure removes what it made."""
        pb_ = self._pb()
        clock = self.clock
        sandbox = self._sandbox_config(ctx, seq)
        t0 = clock()
        sid = self.call("RunPodSandbox", "RunPodSandbox",
                        pb_.RunPodSandboxRequest(config=sandbox)).pod_sandbox_id
        t1 = clock()
        phases["sandbox"] = ms(t1 - t0)
        try:
            cid = self.call("CreateContainer", "CreateContainer", pb_.CreateContainerRequest(
                pod_sandbox_id=sid, config=self._container_config(spec, ctx, command),
                sandbox_config=sandbox)).container_id
            t2 = clock()
            phases["create"] = ms(t2 - t1)
            self.call("StartContainer", "StartContainer",
                      pb_.StartContainerRequest(container_id=cid))
            phases["start"] = ms(clock() - t2)
        except BaseException:
            self._remove_pod(sid)
            raise
        return sid, cid

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        pb_ = self._pb()
        clock = self.clock
        phases: dict[str, float] = {}
        wall0_ns = time.time_ns()
        sid, cid = self._run_pod(spec, ctx, seq, list(spec.command), phases)
        removed = False
        try:
            t3 = clock()
            deadline = time.monotonic() + self.timeout_s
            while True:
                status = self.call("ContainerStatus", "ContainerStatus",
                                   pb_.ContainerStatusRequest(container_id=cid)).status
                if status.state in (pb_.CONTAINER_RUNNING, pb_.CONTAINER_EXITED):
                    break
                if time.monotonic() > deadline:
                    raise EngineTimeout(f"cri: container {cid[:12]} was not observed running "
                                        f"within {self.timeout_s:g} s")
                time.sleep(READY_POLL_S)
            t4 = clock()
            phases["ready"] = ms(t4 - t3)
            if status.state == pb_.CONTAINER_EXITED and status.exit_code != 0:
                raise EngineError(f"cri: container exited with status {status.exit_code}"
                                  + (f" ({status.reason})" if status.reason else ""))
            self._stop_container(cid)
            self.call("StopPodSandbox", "StopPodSandbox",
                      pb_.StopPodSandboxRequest(pod_sandbox_id=sid))
            t5 = clock()
            phases["stop"] = ms(t5 - t4)
            self.call("RemoveContainer", "RemoveContainer",
                      pb_.RemoveContainerRequest(container_id=cid))
            self.call("RemovePodSandbox", "RemovePodSandbox",
                      pb_.RemovePodSandboxRequest(pod_sandbox_id=sid))
            removed = True
            phases["remove"] = ms(clock() - t5)
        finally:
            if not removed:
                self._remove_pod(sid)
        to_exec = round((status.started_at - wall0_ns) / 1e6, 4) if status.started_at else None
        return Sample(sum(phases.values()), phases, to_exec)

    def _stop_container(self, cid: str) -> None:
        """StopContainer, timeout 0. `true` may exit while containerd kills it: its shim (one
        per container) is then gone and containerd 1.6 fails the call ("failed to kill
        container ...: ttrpc: closed", 1 run in 3 of 20 samples under load) before it has
        recorded the exit. A container observed exited shortly after is stopped, which is all
        this asks; one still running is the error."""
        pb_ = self._pb()
        try:
            self.call("StopContainer", "StopContainer",
                      pb_.StopContainerRequest(container_id=cid, timeout=0))
            return
        except (EngineTimeout, RuntimeUnavailable):
            raise
        except EngineError as exc:
            failed = exc
        deadline = time.monotonic() + min(self.timeout_s, STOP_RACE_S)
        while time.monotonic() < deadline:
            status = self.call("ContainerStatus", "ContainerStatus",
                               pb_.ContainerStatusRequest(container_id=cid)).status
            if status.state == pb_.CONTAINER_EXITED:
                return
            time.sleep(READY_POLL_S)
        raise failed

    # -- long-running containers (memory benchmark): one pod each --------------------------
    def daemon_pids(self) -> list[int]:
        if self._private is not None:
            pid = self._private.pid()
            return [pid] if pid else []
        sock = (self._endpoint or "").removeprefix("unix://")
        found = []
        for proc in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["name"] in ("containerd", "crio"):
                    conns = proc.net_connections(kind="unix")
                    if any(c.laddr == sock for c in conns):
                        found.append(proc.pid)
        return found

    def start_detached(self, spec: RunSpec, ctx: RunContext, seq: int) -> str:
        _sid, cid = self._run_pod(spec, ctx, seq, list(spec.command), {})
        return str(cid)

    def container_pid(self, cid: str) -> int:
        resp = self.call("ContainerStatus", "ContainerStatus",
                         self._pb().ContainerStatusRequest(container_id=cid, verbose=True))
        try:
            return int(json.loads(resp.info["info"])["pid"])
        except (KeyError, ValueError, TypeError):
            raise EngineError(f"cri: {self.endpoint} does not report container {cid[:12]}'s "
                              "pid (ContainerStatus verbose info)") from None

    def remove_container(self, cid: str) -> None:
        """Remove the container's whole pod (sandbox and container)."""
        with contextlib.suppress(ForgeError):
            items = self.call("ListContainers", "ListContainers", self._pb().ListContainersRequest(
                filter=self._pb().ContainerFilter(id=cid))).containers
            for c in items:
                self._remove_pod(c.pod_sandbox_id)

    # -- cleanup ----------------------------------------------------------------------------
    def _remove_pod(self, sid: str) -> bool:
        """Stop and remove a sandbox (and so its containers); never raises."""
        if self.hung:
            return False
        pb_ = self._pb()
        timeout = min(self.timeout_s, 15.0)
        try:
            self.call("StopPodSandbox", "StopPodSandbox",
                      pb_.StopPodSandboxRequest(pod_sandbox_id=sid), timeout_s=timeout)
            self.call("RemovePodSandbox", "RemovePodSandbox",
                      pb_.RemovePodSandboxRequest(pod_sandbox_id=sid), timeout_s=timeout)
        except Exception:  # noqa: BLE001 - cleanup never raises
            return False
        return True

    def labelled(self) -> list[dict[str, Any]]:
        """forge's sandboxes, as ``{"Id", "Labels"}`` (what `forge doctor` lists)."""
        pb_ = self._pb()
        items = self.call("ListPodSandbox", "ListPodSandbox", pb_.ListPodSandboxRequest()).items
        return [{"Id": p.id, "Labels": dict(p.labels)} for p in items if LABEL_RUN in p.labels]

    def cleanup(self, run_id: str | None = None) -> int:
        """Remove forge's sandboxes (with their containers): of ``run_id``, or with None
        those whose owner is gone. No private containerd is started for this unless an
        earlier one left pods in its state directory."""
        if self.hung:
            return 0
        if self._rt is None:
            if self._choose()[0] is None and not PrivateContainerd(self.timeout_s).has_leftovers():
                return 0
            try:
                self._connect()
            except ForgeError:
                return 0
        pb_ = self._pb()
        try:
            items = self.call("ListPodSandbox", "ListPodSandbox", pb_.ListPodSandboxRequest(
                filter=pb_.PodSandboxFilter(label_selector={} if run_id is None
                                            else {LABEL_RUN: run_id}))).items
        except ForgeError:
            return 0
        removed = 0
        for pod in items:
            labels = dict(pod.labels)
            if LABEL_RUN not in labels:
                continue
            if run_id is None and not is_leftover(labels.get(LABEL_OWNER, ""), labels[LABEL_RUN]):
                continue
            removed += self._remove_pod(pod.id)
        return removed

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._rt = self._img = None
        self._version = None
        self._checked = False
        self._reason = None
        if self._private is not None:
            self._private.stop(kill=self.hung)
            self._private = None
        self._endpoint = None
