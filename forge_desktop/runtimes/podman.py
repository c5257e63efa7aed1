"""Podman through podman-py's API client, driving create/start/wait/remove ourselves.

``containers.run()`` is not used: it waits through the libpod wait endpoint with its default
250 ms poll, so a 30 ms container reads as ~300 ms (docs/ENGINES.md). We ask for a 10 ms interval.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_desktop import safetar
from forge_desktop.errors import (
    EngineError,
    EngineTimeout,
    ForgeError,
    ImageError,
    RuntimeUnavailable,
)
from forge_desktop.hostfacts import cgroup_version
from forge_desktop.interrupts import signals_deferred
from forge_desktop.models import (
    LABEL_OWNER,
    LABEL_RUN,
    RunContext,
    RunSpec,
    RuntimeInfo,
    RuntimeKind,
    Sample,
)
from forge_desktop.procfs import cmdline, find_pids
from forge_desktop.runtimes import transport
from forge_desktop.runtimes.base import Footprint, ImageFacts, StoreReport, is_leftover
from forge_desktop.runtimes.common import (
    MAX_IN_FLIGHT,
    Clock,
    explain_connection_error,
    first_line,
    is_timeout,
    json_objects,
    known_sum,
    ms,
    overlay_layer_dirs,
    run_cmd,
    setpriv_with_pdeathsig,
    size_or_none,
    stream_error,
    timed_cmd,
    to_exec_ms,
    unix_get_json,
)

if TYPE_CHECKING:
    import podman

WAIT_INTERVAL = "10ms"
CALLS_PER_LIFECYCLE = 4
"""API calls inside one measured lifecycle of ``run_once``: create, start, wait, remove."""
SAVE_TIMEOUT_S = 120.0
"""Ceiling on saving an image (the image benchmark's ~2 MB one)."""
START_HINT = ("start the API service (`podman system service --time=0 "
              "unix:///run/podman/podman.sock &`, or `make run` in the forge checkout)")


def default_socket() -> str:
    """CONTAINER_HOST wins; root uses /run/podman, rootless $XDG_RUNTIME_DIR/podman."""
    env = os.environ.get("CONTAINER_HOST")
    if env:
        return env
    if os.geteuid() == 0:
        return "unix:///run/podman/podman.sock"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
    return f"unix://{runtime_dir}/podman/podman.sock"


def _has_subid_range(path: str, user: str, uid: int) -> bool:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return False
    return any(ln.split(":", 1)[0] in (user, str(uid)) for ln in lines if ":" in ln)


def rootless_reason() -> str | None:
    """What this non-root user's podman lacks, else None. Without a /etc/subuid range podman
    still runs, mapping only the user's uid (enough for forge's image, whose files are all
    root's); a range it is given but cannot apply fails every podman command."""
    if os.geteuid() == 0:
        return None
    import pwd

    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
    if not any(_has_subid_range(f, user, uid) for f in ("/etc/subuid", "/etc/subgid")):
        return None
    # podman looks both up on PATH (containers/storage), as shutil.which does
    missing = [t for t in ("newuidmap", "newgidmap") if shutil.which(t) is None]
    if missing:
        return (f"rootless podman needs {' and '.join(missing)} to map {user}'s /etc/subuid "
                "range: install the 'uidmap' package (`sudo apt install uidmap`)")
    return None


def podman_df_fields(df: dict[str, Any]) -> dict[str, Any]:
    """Disk entry fields from libpod's ``GET /system/df``. Podman lists an image once per
    name; they are merged by id. The store total is the unique bytes of every image plus the
    largest shared part (how ``podman system df`` adds them up). Podman keeps no build cache
    apart from images, so ``build_cache_bytes`` is null."""
    by_id: dict[str, dict[str, Any]] = {}
    unused: dict[str, int] = {}
    for img in df.get("Images") or []:
        image_id = img.get("ImageID")
        repo, tag = img.get("Repository"), img.get("Tag")
        entry = by_id.setdefault(image_id, {"id": image_id, "tags": [],
                                            "size_bytes": size_or_none(img.get("Size")),
                                            "shared_bytes": size_or_none(img.get("SharedSize")),
                                            "unique_bytes": size_or_none(img.get("UniqueSize"))})
        if repo and repo != "<none>":
            name = f"{repo}:{tag}" if tag and tag != "<none>" else repo
            if name not in entry["tags"]:
                entry["tags"].append(name)
        if (img.get("Containers") or 0) == 0:
            unused[image_id] = entry["unique_bytes"] or 0
    images = [{k: v for k, v in e.items() if k != "unique_bytes"} for e in by_id.values()]
    uniques = [e["unique_bytes"] for e in by_id.values()]
    shared = [e["shared_bytes"] for e in by_id.values() if e["shared_bytes"] is not None]
    containers = df.get("Containers") or []
    stopped = [c for c in containers if c.get("Status") != "running"]
    volumes = df.get("Volumes") or []
    return {
        "images_bytes": known_sum(uniques) + max(shared, default=0),
        "containers_bytes": known_sum([size_or_none(c.get("RWSize")) for c in containers]),
        "volumes_bytes": known_sum([size_or_none(v.get("Size")) for v in volumes]),
        "build_cache_bytes": None,
        "images": images,
        "dangling_images": sum(1 for i in images if not i["tags"]),
        "stopped_containers": len(stopped),
        "reclaimable_bytes": (sum(unused.values())
                              + known_sum([size_or_none(c.get("RWSize")) for c in stopped])
                              + known_sum([size_or_none(v.get("ReclaimableSize"))
                                           for v in volumes])),
    }


def podman_layer_dirs(graph_driver: dict[str, Any]) -> dict[str, str]:
    """Podman's container layer: the parent of UpperDir (and of WorkDir, if elsewhere)."""
    dirs = overlay_layer_dirs(graph_driver)
    dirs.pop("init_layer_bytes", None)  # podman has no init layer; never count an image's
    return dirs


class PodmanRuntime:
    name = "podman"
    kind: RuntimeKind = "engine"

    def __init__(self, timeout_s: float = 30.0, clock: Clock = time.perf_counter,
                 remote: transport.Remote | None = None) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self.remote = remote
        """Transport mode: the podman connection whose socket this adapter forwards."""
        self._forward: transport.Forward | None = None
        self.endpoint = default_socket()
        if remote is not None:
            self.name = remote.runtime_name
            self.endpoint = remote.host.url
        self._client: podman.PodmanClient | None = None
        self._reason: str | None = None
        self._checked = False
        self._service: subprocess.Popen[bytes] | None = None
        self.hung = False
        """Set when a call timed out; cleanup calls are then skipped (see DockerRuntime)."""
        self._service_dir: str | None = None

    # -- connection -------------------------------------------------------------------------
    def _socket_path(self) -> Path | None:
        return Path(self.endpoint.removeprefix("unix://")) if self.endpoint.startswith(
            "unix://") else None

    def _can_start_service(self) -> bool:
        if self.remote is not None:  # the connection's service or nothing
            return False
        sock = self._socket_path()
        return (sock is not None and not sock.exists() and shutil.which("podman") is not None
                and "CONTAINER_HOST" not in os.environ)

    def _start_service(self) -> None:
        """No socket but a podman binary: run a private API service for this run only."""
        self._service_dir = tempfile.mkdtemp(prefix="forge-podman-")
        sock = Path(self._service_dir) / "podman.sock"
        argv = ["podman", "system", "service", "--time=0", f"unix://{sock}"]
        setpriv = setpriv_with_pdeathsig()
        if setpriv:
            # --time=0 never expires: if forge is SIGKILLed, nothing would ever stop this
            # service. A parent-death signal ends it with forge (util-linux setpriv, so no
            # preexec_fn, which is unsafe in a threaded process such as the GUI's job thread;
            # the signal follows the thread that started it, which is the one that runs the
            # benchmark and closes this runtime).
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        self._service = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)  # our Ctrl-C must not kill it before cleanup ran
        deadline = time.monotonic() + min(self.timeout_s, 20.0)
        while not sock.exists():
            if self._service.poll() is not None or time.monotonic() > deadline:
                err = self._service.stderr.read().decode(errors="replace") \
                    if self._service.stderr else ""
                self._stop_service()
                raise RuntimeUnavailable(
                    f"{self.name}: could not start a temporary API service: "
                    f"{first_line(err) or 'no socket appeared'}; {START_HINT}")
            time.sleep(0.02)
        self.endpoint = f"unix://{sock}"

    def _stop_service(self) -> None:
        if self._service is not None:
            self._service.terminate()
            try:
                self._service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._service.kill()
                self._service.wait()
            self._service = None
        if self._service_dir:
            shutil.rmtree(self._service_dir, ignore_errors=True)
            self._service_dir = None
        if self._forward is not None:
            self._forward.close()
            self._forward = None
        self.endpoint = default_socket() if self.remote is None else self.remote.host.url

    def client(self) -> podman.PodmanClient:
        if self.hung:
            # every later call would wait out the timeout again: fail at once (see DockerRuntime)
            raise EngineTimeout(f"{self.name}: {self._hung_reason()}")
        if self._client is not None:
            return self._client
        if self._checked and self._reason:
            raise RuntimeUnavailable(f"{self.name}: {self._reason}")
        self._checked = True
        if self._can_start_service():
            self._start_service()
        if self.remote is not None:
            assert self.remote.socket_path is not None
            self._forward = transport.Forward(self.remote.host, self.remote.socket_path,
                                              self.timeout_s)
            try:
                self.endpoint = "unix://" + self._forward.open()
            except RuntimeUnavailable as exc:
                self._reason = str(exc)
                self._stop_service()
                raise RuntimeUnavailable(f"{self.name}: {self._reason}") from None
        try:
            from podman import PodmanClient
        except ImportError:  # pragma: no cover
            self._reason = "podman-py is not installed (pip install podman)"
            raise RuntimeUnavailable(f"{self.name}: {self._reason}") from None
        url = self.endpoint.replace("unix://", "http+unix://", 1)
        try:
            client = PodmanClient(base_url=url, timeout=self.timeout_s,
                                  max_pool_size=MAX_IN_FLIGHT)
            client.ping()
            resp = client.api.get("/_ping", timeout=self.timeout_s)
            resp.raise_for_status()
        except Exception as exc:  # noqa: BLE001
            self._reason = explain_connection_error(exc, self.endpoint, "podman", START_HINT)
            self._stop_service()
            raise RuntimeUnavailable(f"{self.name}: {self._reason}") from None
        self._client = client
        return client

    def _hung_reason(self) -> str:
        return (f"{self.endpoint} did not answer within {self.timeout_s:g} s earlier in this "
                "run; it is not asked again (is the service hung?)")

    def engine_error(self, what: str, exc: BaseException,
                     timeout_s: float | None = None) -> EngineTimeout | RuntimeUnavailable:
        """The one mapping of a failed request (no HTTP answer) to a ForgeError, for this
        adapter and everything else that talks to this service (the image benchmark's store
        calls): a timeout marks the service hung, so no later call waits for it again."""
        # podman-py raises APIError("... (POST operation failed)") from the requests error:
        # the timeout or the refused connection is its cause, so look down the chain
        if is_timeout(exc):
            self.hung = True
            return EngineTimeout(f"{self.name}: {what} did not answer within "
                                 f"{timeout_s or self.timeout_s:g} s")
        why = explain_connection_error(exc, self.endpoint, "podman", START_HINT)
        # no HTTP answer at all: the service is gone (killed, crashed), so stop using it
        # at once rather than retrying (the runner stops a runtime on RuntimeUnavailable)
        return RuntimeUnavailable(f"{self.name}: {why}")

    def available(self) -> str | None:
        if self.hung:
            return self._hung_reason()
        sock = self._socket_path()
        if self._client is None and self._can_start_service():
            # a temporary service will be started when the run needs it
            return rootless_reason()
        if sock is not None and not sock.exists() and not shutil.which("podman"):
            return f"podman is not installed (no {sock} and no podman command)"
        try:
            self.client()
        except RuntimeUnavailable:
            return self._reason
        return None

    def info(self) -> RuntimeInfo:
        reason = self.available()
        if reason:
            return RuntimeInfo(self.name, "engine", False, endpoint=self.endpoint, reason=reason)
        if self._client is None:  # binary only: ask the CLI, do not start a service to list
            out = run_cmd(["podman", "version", "--format", "{{.Client.Version}}"],
                          self.timeout_s, "podman version")
            # the service forge starts runs as this user: rootless podman on cgroup v1 ignores
            # --memory and --pids-limit
            return RuntimeInfo(self.name, "engine", True, version=out.stdout.strip() or None,
                               endpoint=f"{self.endpoint} (temporary service started per run)",
                               cgroup_limits=os.geteuid() == 0 or cgroup_version() == "v2")
        data = self.call("GET", "/info")
        host = data.get("host", {})
        rootless = bool(host.get("security", {}).get("rootless"))
        return RuntimeInfo(self.name, "engine", True,
                           version=data.get("version", {}).get("Version"),
                           endpoint=self.remote.host.url if self.remote else self.endpoint,
                           storage_driver=data.get("store", {}).get("graphDriverName"),
                           cgroup_limits=not (rootless and host.get("cgroupVersion") != "v2"),
                           transport=self.transport_figures(data) if self.remote else None)

    def transport_figures(self, info: dict[str, Any]) -> dict[str, Any]:
        """What one API call over the forwarded socket costs, and the same ``/_ping`` on the
        service's own socket when this machine has it (a loopback host whose service has the
        same store)."""
        assert self.remote is not None and self.remote.socket_path is not None
        local_call = None
        why: str | None = (f"unknown: {self.remote.host.hostname} is not this machine; run "
                           "forge there (--host) to time a call on its own socket")
        if transport.is_loopback(self.remote.host.hostname):
            def store(data: Any) -> tuple[Any, Any]:  # not its counts: they change
                roots = data.get("store") or {}
                return roots.get("graphRoot"), roots.get("runRoot")

            path = transport.local_socket(
                ["unix://" + self.remote.socket_path],
                lambda p: store(json.loads(transport.unix_get(p, "/v4.0.0/libpod/info",
                                                              self.timeout_s))),
                store(info))
            if path is not None:
                def local_call() -> object:
                    return transport.unix_get(path, "/_ping", self.timeout_s)
            else:
                why = "unknown: no socket here answers as the connection's service"
        return transport.transport_figures(
            self.remote, lambda: self.call("GET", "/_ping"), local_call, why,
            CALLS_PER_LIFECYCLE)

    # -- raw API ----------------------------------------------------------------------------
    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, ok_404: bool = False,
              timeout_s: float | None = None) -> Any:
        client = self.client()  # raises at once when the service is hung
        api = client.api
        timeout = timeout_s or self.timeout_s
        try:
            if method == "GET":
                resp = api.get(path, params=params, timeout=timeout)
            elif method == "POST":
                resp = api.post(path, params=params,
                                data=json.dumps(body) if body is not None else None,
                                headers={"content-type": "application/json"}, timeout=timeout)
            else:
                resp = api.delete(path, params=params, timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error(f"{method} {path}", exc, timeout) from None
        if resp.status_code == 404 and ok_404:
            return None
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise EngineError(f"{self.name}: {method} {path} failed: {first_line(message)}")
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    # -- images -----------------------------------------------------------------------------
    def has_image(self, image: str) -> bool:
        return self.call("GET", f"/images/{image}/json", ok_404=True) is not None

    def image_layers(self, image: str) -> list[str]:
        data = self.call("GET", f"/images/{image}/json")
        return list(data.get("RootFS", {}).get("Layers", []))

    def import_tar(self, tar_path: Path, image: str) -> None:
        client = self.client()
        with open(tar_path, "rb") as fh:
            try:
                resp = client.api.post("/images/import", params={"reference": image},
                                       data=fh, headers={"content-type": "application/x-tar"},
                                       timeout=self.timeout_s)
            except Exception as exc:  # noqa: BLE001
                raise self.engine_error(f"import {tar_path}", exc) from None
        if resp.status_code >= 400:
            raise ImageError(f"podman could not import {tar_path}: {first_line(resp.text)}")

    def export_rootfs(self, image: str, dest: Path, ctx: RunContext) -> None:
        cid: str | None = None
        try:
            # a signal waits for the answer: its id is what removes the container (docker.py)
            with signals_deferred("interrupted; the bundle's container was removed"):
                cid = self.call("POST", "/containers/create",
                                body={"image": image, "command": ["true"],
                                      "labels": ctx.labels()})["Id"]
            client = self.client()
            try:
                resp = client.api.get(f"/containers/{cid}/export", stream=True,
                                      timeout=self.timeout_s)
            except Exception as exc:  # noqa: BLE001
                raise self.engine_error(f"export {image}", exc) from None
            if resp.status_code >= 400:
                raise EngineError(f"{self.name}: export {image} failed: {first_line(resp.text)}")
            with tarfile.open(fileobj=resp.raw, mode="r|") as tar:
                safetar.extract(tar, dest)
        finally:
            if cid is not None:
                self.call("DELETE", f"/containers/{cid}", params={"force": True}, ok_404=True)
            else:  # interrupted or failed mid-create: it may exist all the same (docker.py)
                with contextlib.suppress(Exception):
                    self.cleanup(ctx.run_id)

    # -- the image store (ImageStore: the image benchmark) ---------------------------------
    def inspect_image(self, ref: str) -> ImageFacts | None:
        data = self.call("GET", f"/images/{ref}/json", ok_404=True)
        if data is None:
            return None
        return ImageFacts(str(data["Id"]), tuple(data.get("RepoTags") or ()))

    def list_images(self) -> list[ImageFacts]:
        data = self.call("GET", "/images/json") or []
        return [ImageFacts(str(i["Id"]), tuple(i.get("RepoTags") or ())) for i in data]

    def remove_image(self, ref: str, force: bool) -> None:
        self.call("DELETE", f"/images/{ref}", params={"force": force}, ok_404=True)

    def _raw(self, method: str, what: str, path: str, timeout_s: float,
             **kwargs: Any) -> bytes:
        """The whole answer's body. A service that sends nothing for the adapter's timeout is
        hung (the read timeout); one still streaming after ``timeout_s`` is only too slow."""
        api = self.client().api  # refuses at once once the service is hung
        deadline = time.monotonic() + timeout_s
        body = bytearray()
        try:
            resp = (api.get if method == "GET" else api.post)(
                path, timeout=self.timeout_s, stream=True, **kwargs)
            with contextlib.closing(resp):
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if time.monotonic() > deadline:
                        raise EngineError(f"{self.name}: {what} did not finish within "
                                          f"{timeout_s:g} s")
        except ForgeError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error(what, exc, self.timeout_s) from None
        if resp.status_code >= 400:
            objs = list(json_objects(body.decode(errors="replace")))
            message = (objs[0].get("message") or objs[0].get("cause")) if objs \
                else body.decode(errors="replace")
            raise EngineError(f"{self.name}: {what} failed: {first_line(str(message))}")
        return bytes(body)

    @staticmethod
    def _check_stream(what: str, body: bytes) -> None:
        """libpod answers 200 and reports a failed push or pull inside the body."""
        for obj in json_objects(body.decode(errors="replace")):
            if err := stream_error(obj):
                raise EngineError(f"podman: {what} failed: {first_line(err)}")

    def save_image(self, ref: str) -> bytes:
        return self._raw("GET", f"save {ref}", f"/images/{ref}/get", SAVE_TIMEOUT_S,
                         params={"format": "docker-archive"})

    def load_image(self, data: bytes, timeout_s: float) -> None:
        self._raw("POST", "load", "/images/load", timeout_s, data=data,
                  headers={"content-type": "application/x-tar"})

    def push_image(self, ref: str, dest: str, timeout_s: float, tls_verify: bool = True) -> None:
        body = self._raw("POST", f"push {dest}", f"/images/{ref}/push", timeout_s,
                         params={"destination": dest, "tlsVerify": str(tls_verify).lower()})
        self._check_stream(f"push {dest}", body)

    def pull(self, image: str, timeout_s: float, tls_verify: bool = True) -> None:
        """The one pull, for preparing the benchmark image and for the image benchmark."""
        # not quiet: libpod streams progress while it pulls, so a slow pull keeps answering
        # within the read timeout and only a hung service is taken for one
        body = self._raw("POST", f"pull {image}", "/images/pull", timeout_s,
                         params={"reference": image, "tlsVerify": str(tls_verify).lower(),
                                 "quiet": "false"})
        self._check_stream(f"pull {image}", body)

    # -- store usage (StoreUsage: the disk benchmark) --------------------------------------
    def store_usage(self, image: str) -> StoreReport:
        df = self.call("GET", "/system/df") or {}
        info = self.call("GET", "/info") or {}
        root = (info.get("store") or {}).get("graphRoot")
        report = StoreReport(podman_df_fields(df), root or None)
        if not root:
            report.warnings.append("podman did not report its store path (store.graphRoot)")
        return report

    @contextlib.contextmanager
    def container_footprint(self, image: str, ctx: RunContext) -> Iterator[Footprint]:
        """A created (never started) container and the directories podman made for it."""
        root = ((self.call("GET", "/info") or {}).get("store") or {}).get("graphRoot")
        with signals_deferred():  # as in export_rootfs
            cid = self.call("POST", "/containers/create",
                            body=self.create_body(RunSpec(image), ctx))["Id"]
        fp = Footprint(cid)
        try:
            inspected = self.call("GET", f"/containers/{cid}/json", params={"size": True}) or {}
            fp.size_rw_bytes = size_or_none(inspected.get("SizeRw"))
            fp.size_root_fs_bytes = size_or_none(inspected.get("SizeRootFs"))
            layers = podman_layer_dirs(inspected.get("GraphDriver") or {})
            if not root or "layer_bytes" not in layers:
                driver = (inspected.get("GraphDriver") or {}).get("Name")
                fp.complete = False
                fp.warnings.append(
                    f"podman's {driver} storage driver does not expose the container's layer "
                    "directory; per_container_bytes is not reported (see "
                    "container_size_rw_bytes)")
            else:
                fp.dirs = {"container_dir_bytes": os.path.join(root, "overlay-containers",
                                                               cid), **layers}
            yield fp
        finally:
            try:
                self.call("DELETE", f"/containers/{cid}", params={"force": True}, ok_404=True)
            except ForgeError as exc:
                fp.warnings.append(f"could not remove container {cid[:12]}: {exc}; "
                                   "the run's cleanup retries")

    # -- container facts (ContainerFacts: resources, the tray) ----------------------------
    default_store_root = "/var/lib/containers/storage"

    def store_root(self) -> str | None:
        root = ((self.call("GET", "/info") or {}).get("store") or {}).get("graphRoot")
        return str(root) if root else None

    def container_counts(self) -> tuple[int, int]:
        containers = self.call("GET", "/containers/json", params={"all": True}) or []
        return sum(1 for c in containers if c.get("State") == "running"), len(containers)

    def quick_running_count(self, timeout_s: float) -> int | None:
        data = unix_get_json(default_socket(), "/v4.0.0/libpod/containers/json", timeout_s)
        return len(data) if isinstance(data, list) else None

    # -- measuring --------------------------------------------------------------------------
    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        if spec.via == "cli":
            if not shutil.which("podman"):
                raise RuntimeUnavailable("podman: --via cli needs the podman command on PATH")
            return
        self.client()

    def create_body(self, spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
        body: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command),
            "labels": ctx.labels(),
            "resource_limits": {"memory": {"limit": spec.memory_limit_bytes},
                                "pids": {"limit": spec.pids_limit}},
            "cap_drop": ["ALL"],
            "no_new_privileges": True,
            "read_only_filesystem": True,
        }
        if spec.network != "default":
            body["netns"] = {"nsmode": spec.network}
        return body

    def cli_argv(self, spec: RunSpec, ctx: RunContext) -> list[str]:
        argv = ["podman", "run", "--rm", "--label", f"{LABEL_RUN}={ctx.run_id}",
                "--label", f"{LABEL_OWNER}={ctx.owner}",
                "--memory", str(spec.memory_limit_bytes), "--pids-limit", str(spec.pids_limit),
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only"]
        if spec.network != "default":
            argv += ["--network", spec.network]
        return [*argv, spec.image, *spec.command]

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        if spec.via == "cli":
            total = timed_cmd(self.cli_argv(spec, ctx), self.timeout_s, "podman run", self.clock)
            return Sample(total, {"run": total})
        clock = self.clock
        phases: dict[str, float] = {}
        body = self.create_body(spec, ctx)
        wall0_ns = time.time_ns()
        t0 = clock()
        cid = self.call("POST", "/containers/create", body=body)["Id"]
        t1 = clock()
        phases["create"] = ms(t1 - t0)
        removed = False
        try:
            self.call("POST", f"/containers/{cid}/start")
            t2 = clock()
            phases["start"] = ms(t2 - t1)
            code = self.call("POST", f"/containers/{cid}/wait",
                              params={"condition": "exited", "interval": WAIT_INTERVAL})
            t3 = clock()
            phases["wait"] = ms(t3 - t2)
            if code != 0:
                raise EngineError(f"{self.name}: container exited with status {code}")
            # not part of the lifecycle: its time is taken out of the total below
            state = self.call("GET", f"/containers/{cid}/json")["State"]
            t4 = clock()
            self.call("DELETE", f"/containers/{cid}", params={"force": True})
            removed = True
            t5 = clock()
            phases["remove"] = ms(t5 - t4)
        finally:
            if not removed:
                self._remove_quietly(cid)
        return Sample(ms((t3 - t0) + (t5 - t4)), phases,
                      to_exec_ms(state.get("StartedAt", ""), wall0_ns))

    # -- long-running containers (memory benchmark) ---------------------------------------
    def daemon_pids(self) -> list[int]:
        """The API service: ours if we started one, else `podman system service` processes."""
        if self._service is not None:
            return [self._service.pid]
        if self.remote is not None:  # its processes are on another machine
            return []
        sock = str(self._socket_path() or "")
        services = find_pids(lambda name, cmd: name == "podman" and "service" in cmd
                             and "system" in cmd, named=lambda name: name == "podman")
        mine = [p for p in services if sock and any(sock in a for a in cmdline(p))]
        return mine or services

    def engine_pids(self) -> list[int]:
        """The API service and the conmon supervising each of podman's containers."""
        if self.remote is not None:
            return []
        return [*self.daemon_pids(), *find_pids(lambda _name, _cmd: True,
                                                named=lambda name: name == "conmon")]

    def start_detached(self, spec: RunSpec, ctx: RunContext, seq: int) -> str:
        cid: str = self.call("POST", "/containers/create", body=self.create_body(spec, ctx))["Id"]
        try:
            self.call("POST", f"/containers/{cid}/start")
        except BaseException:
            self._remove_quietly(cid)
            raise
        return cid

    def container_pid(self, cid: str) -> int:
        return int(self.call("GET", f"/containers/{cid}/json")["State"]["Pid"])

    def remove_container(self, cid: str) -> None:
        self._remove_quietly(cid)

    # -- cleanup ----------------------------------------------------------------------------
    def _remove_quietly(self, cid: str) -> bool:
        if self.hung:
            return False
        try:
            # timeout=0: kill at once; `sleep` as PID 1 ignores SIGTERM, so the default
            # 10 s grace period would be spent on every running container
            self.call("DELETE", f"/containers/{cid}", params={"force": True, "timeout": 0},
                      ok_404=True, timeout_s=min(self.timeout_s, 15.0))
        except Exception:  # noqa: BLE001 - cleanup never raises
            return False
        return True

    def labelled(self) -> list[dict[str, Any]]:
        data = self.call("GET", "/containers/json",
                          params={"all": True, "filters": json.dumps({"label": [LABEL_RUN]})})
        return list(data or [])

    def _labelled_cli(self) -> list[dict[str, Any]]:
        out = run_cmd(["podman", "ps", "-a", "--filter", f"label={LABEL_RUN}", "--format",
                       "json"], self.timeout_s, "podman ps")
        return list(json.loads(out.stdout or "[]")) if out.returncode == 0 else []

    def cleanup(self, run_id: str | None = None) -> int:
        """Remove labelled containers; without an API service, through the podman CLI."""
        if self.hung:
            return 0
        via_cli = self._client is None and self._service is None and self._can_start_service()
        try:
            containers = self._labelled_cli() if via_cli else self.labelled()
        except Exception:  # noqa: BLE001
            return 0
        removed = 0
        oci_runtime: list[str | None] = []  # looked up once, on the first removal
        for c in containers:
            labels = c.get("Labels") or {}
            if run_id is not None:
                if labels.get(LABEL_RUN) != run_id:
                    continue
            elif not is_leftover(labels.get(LABEL_OWNER, ""), labels.get(LABEL_RUN, "")):
                continue
            if via_cli:
                try:
                    ok = run_cmd(["podman", "rm", "-f", "-t", "0", c["Id"]], self.timeout_s,
                                 "podman rm").returncode == 0
                except EngineError:  # cleanup never raises
                    ok = False
            else:
                ok = self._remove_quietly(c["Id"])
            if ok:
                removed += 1
                if not oci_runtime:
                    oci_runtime.append(self._oci_runtime(via_cli))
                self._delete_runtime_leftover(oci_runtime[0], c["Id"])
        return removed

    def _oci_runtime(self, via_cli: bool) -> str | None:
        """Path of the OCI runtime podman drives (runc, crun), or None if it cannot be told."""
        try:
            if via_cli:
                out = run_cmd(["podman", "info", "--format", "{{.Host.OCIRuntime.Path}}"],
                              self.timeout_s, "podman info")
                path = out.stdout.strip() if out.returncode == 0 else ""
            else:
                info = self.call("GET", "/info") or {}
                path = str(info.get("host", {}).get("ociRuntime", {}).get("path") or "")
        except Exception:  # noqa: BLE001 - best effort, inside cleanup
            return None
        return path if path.startswith("/") else None

    def _delete_runtime_leftover(self, oci_runtime: str | None, cid: str) -> None:
        """A podman service killed between its OCI runtime's ``create`` and recording that in
        its database leaves the runtime's container (a ``runc init`` and its conmon, for ever)
        behind: podman's ``rm`` skips the runtime because its database says the container was
        never created. Found by tests/faults; the id is one of forge's own labelled containers
        just removed, so deleting it from the runtime too is safe (a no-op when it is gone)."""
        if oci_runtime is None:
            return
        with contextlib.suppress(EngineError):
            run_cmd([oci_runtime, "delete", "--force", cid], min(self.timeout_s, 10.0),
                    f"{oci_runtime} delete")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
        self._checked = False
        self._reason = None
        self._stop_service()
