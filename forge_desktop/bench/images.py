"""The image benchmark: how long an engine takes to load an image from a tar, or to pull it
from a registry, cold.

Why the run makes its own image: a cold load or pull needs the image (and its layer) to be
absent first, and removing the user's images is not ours to do, nor safe while other forge
runs start containers from ``forge-bench:busybox``. So every run builds a one-layer copy of the
benchmark image with one extra file, ``/forge-run``, holding the run id: its layer digest is
unique to the run, nothing else on any engine shares it, and removing it by ID between
iterations makes each load or pull really cold without touching anything else. It is imported
as ``forge-bench-tmp:<tag>``; the tag carries the owner's pid and start time (like bare OCI
container ids) so leftovers of a killed run can be swept by a later one, and every removal
checks first that the image carries no tag but this run's.

Pull mode pushes the image once (from the first engine that can) and every engine pulls those
same bytes, so engines are compared on an identical transfer. Only the load or pull call is
timed; the removal before it and the check after it are not.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from forge_desktop.bench import stats
from forge_desktop.bench.runner import (
    ProgressFn,
    RuntimeRun,
    signals_deferred,
    sweep_dead,
)
from forge_desktop.bench.session import Log, Measured, Session
from forge_desktop.config import MAX_ITERATIONS, MAX_WARMUP, Config
from forge_desktop.errors import (
    EngineError,
    EngineTimeout,
    ForgeError,
    ImageError,
    Interrupted,
    RegistryUnavailable,
    RuntimeUnavailable,
    UsageError,
)
from forge_desktop.image import build_busybox_tar, host_busybox
from forge_desktop.models import RunContext, RuntimeInfo, Sample
from forge_desktop.runtimes.base import Runtime, owner_alive
from forge_desktop.runtimes.common import Clock, first_line, ms
from forge_desktop.runtimes.docker import DockerRuntime, is_timeout
from forge_desktop.runtimes.podman import PodmanRuntime
from forge_desktop.runtimes.registry import known_runtimes, select_runtimes

if TYPE_CHECKING:
    import requests

SOURCES = ("load", "pull")
TEMP_REPO = "forge-bench-tmp"
DEFAULT_REGISTRY = "127.0.0.1:5000"
REGISTRY_ENV = "FORGE_REGISTRY"
TRANSFER_TIMEOUT_S = 120.0
"""Ceiling on one load, pull or push of the ~2 MB image; the read timeout is the adapter's."""
PROBE_TIMEOUT_S = 3.0
SETTLE_S = 0.5
"""After an interrupt in the middle of an engine call, the engine may still finish that call
(a load already uploaded, a pull already fetched): cleanup looks again after this long."""
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
))
"""Podman pushes OCI manifests, docker pushes docker v2 ones: a registry answers 404 for a
manifest whose type the Accept header leaves out."""


_HOST_PORT_RE = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*)"
    r":(?P<port>[0-9]{1,5})$")
_TAG_RE = re.compile(r"^(?P<token>[0-9A-Za-z]{1,32})-(?P<pid>[0-9]+)-(?P<start>[0-9]+)"
                     r"-(?P<host>[0-9a-f]{6})$")


# -- options --------------------------------------------------------------------------------

def parse_registry(value: str, where: str = "--registry") -> str:
    """``HOST:PORT`` or a one-line usage error."""
    m = _HOST_PORT_RE.match(value.strip())
    if not m or not 1 <= int(m["port"]) <= 65535:
        raise UsageError(f"{where} must look like HOST:PORT (e.g. {DEFAULT_REGISTRY}), "
                         f"got {value!r}")
    return value.strip()


@dataclass(frozen=True)
class ImageOptions:
    runtimes: tuple[str, ...] = ()
    source: str = "load"
    registry: str | None = None
    """None: $FORGE_REGISTRY, else 127.0.0.1:5000. Given explicitly, it must answer."""
    iterations: int = 5
    warmup: int = 1
    save: bool = True

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise UsageError(f"--source must be load or pull, got {self.source!r}")
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise UsageError(f"--iterations must be between 1 and {MAX_ITERATIONS}, "
                             f"got {self.iterations}")
        if not 0 <= self.warmup <= MAX_WARMUP:
            raise UsageError(f"--warmup must be between 0 and {MAX_WARMUP}, got {self.warmup}")
        self.registry_address()

    def registry_address(self) -> str:
        if self.registry is not None:
            return parse_registry(self.registry)
        env = os.environ.get(REGISTRY_ENV)
        if env:
            return parse_registry(env, REGISTRY_ENV)
        return DEFAULT_REGISTRY

    def needs_registry(self) -> bool:
        return self.source == "pull" or self.registry is not None


# -- the temporary image's name -------------------------------------------------------------

def host_hash() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temp_tag(ctx: RunContext) -> str:
    """``<run token>-<pid>-<start ticks>-<host hash>``: unique per run, and tells a later run
    whether the owner is still alive (the same scheme as bare OCI container ids)."""
    _host, pid, start = ctx.owner.split("/")
    return f"{ctx.run_id.rsplit('-', 1)[-1]}-{pid}-{start}-{host_hash()}"


def split_ref(ref: str) -> tuple[str, str]:
    """``[registry/]path/name:tag`` -> (last path component, tag); no tag -> (name, "")."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        name, tag = ref, ""
    return name.rsplit("/", 1)[-1], tag


def is_temp_ref(ref: str, tag: str) -> bool:
    return split_ref(ref) == (TEMP_REPO, tag)


def tag_owner_dead(tag: str) -> bool:
    """True only for a forge temp tag made on this host by a process that is gone; any tag
    we cannot read, or one from another host sharing the engine, is left alone."""
    m = _TAG_RE.match(tag)
    if not m or m["host"] != host_hash():
        return False
    return not owner_alive(f"{socket.gethostname()}/{m['pid']}/{m['start']}")


def build_temp_tar(dest: Path, run_id: str) -> Path:
    """The benchmark image's tar (as image.py builds it) plus ``/forge-run``: a layer no other
    image shares, so its removal and the next load or pull are cold everywhere."""
    if host_busybox() is None:
        raise ImageError("the image benchmark builds its image from a static busybox and none "
                         "was found; install busybox-static")
    build_busybox_tar(dest)
    data = f"{run_id}\n".encode()
    info = tarfile.TarInfo("forge-run")
    info.size, info.mode, info.mtime = len(data), 0o444, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with tarfile.open(dest, "a") as tar:
        tar.addfile(info, io.BytesIO(data))
    return dest


# -- engines --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageFacts:
    id: str
    tags: tuple[str, ...]


class ImageDriver(Protocol):
    """The image operations the benchmark needs from one engine; each honours a timeout and
    raises ForgeError subclasses only."""

    name: str

    def import_tar(self, tar_path: Path, ref: str) -> None: ...

    def inspect(self, ref: str) -> ImageFacts | None: ...

    def list_images(self) -> list[ImageFacts]: ...

    def remove(self, ref: str, force: bool) -> None: ...

    def save(self, ref: str) -> bytes: ...

    def load(self, data: bytes, timeout_s: float) -> None: ...

    def push(self, ref: str, dest: str, timeout_s: float) -> None: ...

    def pull(self, ref: str, timeout_s: float) -> None: ...


def _json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Engines stream progress as JSON objects, one after another; skip what is not one."""
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        try:
            obj, i = decoder.raw_decode(text, i)
        except ValueError:
            return
        if isinstance(obj, dict):
            yield obj


def _stream_error(obj: dict[str, Any]) -> str | None:
    err = obj.get("error") or (obj.get("errorDetail") or {}).get("message")
    return str(err) if err else None


_EMPTY_AUTH = base64.urlsafe_b64encode(b"{}").decode()


class DockerImages:
    """Images through the docker SDK's APIClient; load, pull and push go through its raw
    ``post`` so each has an explicit timeout (the SDK's ``pull`` passes ``timeout=None``).

    Every failure goes through the adapter's one error mapping (``engine_error``): a call
    that times out marks the daemon hung, and from then on ``client()`` refuses at once, so
    neither the runner's retries nor the cleanup wait for it again."""

    name = "docker"

    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime
        self.name = runtime.name

    def _client(self) -> Any:
        return self.runtime.client()

    def import_tar(self, tar_path: Path, ref: str) -> None:
        self.runtime.import_tar(tar_path, ref)

    def inspect(self, ref: str) -> ImageFacts | None:
        from docker.errors import ImageNotFound, NotFound

        try:
            data = self._client().inspect_image(ref)
        except (ImageNotFound, NotFound):
            return None
        except Exception as exc:  # noqa: BLE001 - every engine failure becomes one line
            raise self.runtime.engine_error(f"inspect {ref}", exc) from None
        return ImageFacts(data["Id"], tuple(data.get("RepoTags") or ()))

    def list_images(self) -> list[ImageFacts]:
        try:
            images = self._client().images()
        except Exception as exc:  # noqa: BLE001
            raise self.runtime.engine_error("image list", exc) from None
        return [ImageFacts(i["Id"], tuple(t for t in i.get("RepoTags") or ()
                                          if t != "<none>:<none>")) for i in images]

    def remove(self, ref: str, force: bool) -> None:
        from docker.errors import ImageNotFound, NotFound

        try:
            self._client().remove_image(ref, force=force)
        except (ImageNotFound, NotFound):
            return
        except Exception as exc:  # noqa: BLE001
            raise self.runtime.engine_error(f"remove {ref}", exc) from None

    def save(self, ref: str) -> bytes:
        try:
            return b"".join(self._client().get_image(ref))
        except Exception as exc:  # noqa: BLE001
            raise self.runtime.engine_error(f"save {ref}", exc) from None

    def _post(self, what: str, path: str, timeout_s: float, *, params: dict[str, Any],
              data: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        """POST and read the streamed answer to its end; an ``error`` object in a 200 answer
        is a failure too."""
        client = self._client()
        url = f"{client.base_url}/v{client.api_version}{path}"
        deadline = time.monotonic() + timeout_s
        try:
            resp = client.post(url, params=params, data=data, headers=headers or {},
                               stream=True, timeout=(self.runtime.timeout_s,
                                                     min(timeout_s, self.runtime.timeout_s)))
            with contextlib.closing(resp):
                if resp.status_code >= 400:
                    objs = list(_json_objects(resp.text))
                    message = objs[0].get("message") if objs else resp.text
                    raise EngineError(f"docker: {what} failed: {first_line(str(message))}")
                for line in resp.iter_lines():
                    if time.monotonic() > deadline:
                        raise EngineError(f"docker: {what} did not finish within "
                                          f"{timeout_s:g} s")
                    for obj in _json_objects(line.decode(errors="replace")):
                        if err := _stream_error(obj):
                            raise EngineError(f"docker: {what} failed: {first_line(err)}")
        except ForgeError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.runtime.engine_error(what, exc) from None

    def load(self, data: bytes, timeout_s: float) -> None:
        self._post("load", "/images/load", timeout_s, params={"quiet": "1"}, data=data,
                   headers={"Content-Type": "application/x-tar"})

    def push(self, ref: str, dest: str, timeout_s: float) -> None:
        repo, _, tag = dest.rpartition(":")
        try:
            self._client().tag(ref, repo, tag)
        except Exception as exc:  # noqa: BLE001
            raise self.runtime.engine_error(f"tag {ref} as {dest}", exc) from None
        self._post(f"push {dest}", f"/images/{quote(repo, safe='/:')}/push", timeout_s,
                   params={"tag": tag}, headers={"X-Registry-Auth": _EMPTY_AUTH})

    def pull(self, ref: str, timeout_s: float) -> None:
        repo, _, tag = ref.rpartition(":")
        self._post(f"pull {ref}", "/images/create", timeout_s,
                   params={"fromImage": repo, "tag": tag},
                   headers={"X-Registry-Auth": _EMPTY_AUTH})


class PodmanImages:
    """Images through podman's libpod REST API (the adapter's ``call`` and raw client). As for
    docker, every failure goes through the adapter's one error mapping (``engine_error``)."""

    name = "podman"

    def __init__(self, runtime: PodmanRuntime) -> None:
        self.runtime = runtime
        self.name = runtime.name

    def import_tar(self, tar_path: Path, ref: str) -> None:
        self.runtime.import_tar(tar_path, ref)

    def inspect(self, ref: str) -> ImageFacts | None:
        data = self.runtime.call("GET", f"/images/{ref}/json", ok_404=True)
        if data is None:
            return None
        return ImageFacts(str(data["Id"]), tuple(data.get("RepoTags") or ()))

    def list_images(self) -> list[ImageFacts]:
        data = self.runtime.call("GET", "/images/json") or []
        return [ImageFacts(str(i["Id"]), tuple(i.get("RepoTags") or ())) for i in data]

    def remove(self, ref: str, force: bool) -> None:
        self.runtime.call("DELETE", f"/images/{ref}", params={"force": force}, ok_404=True)

    def _raw(self, method: str, what: str, path: str, timeout_s: float,
             **kwargs: Any) -> bytes:
        """The whole answer's body. A service that sends nothing for the adapter's timeout is
        hung (the read timeout); one still streaming after ``timeout_s`` is only too slow."""
        api = self.runtime.client().api  # refuses at once once the service is hung
        deadline = time.monotonic() + timeout_s
        body = bytearray()
        try:
            resp = (api.get if method == "GET" else api.post)(
                path, timeout=self.runtime.timeout_s, stream=True, **kwargs)
            with contextlib.closing(resp):
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if time.monotonic() > deadline:
                        raise EngineError(f"podman: {what} did not finish within "
                                          f"{timeout_s:g} s")
        except ForgeError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.runtime.engine_error(what, exc, self.runtime.timeout_s) from None
        if resp.status_code >= 400:
            objs = list(_json_objects(body.decode(errors="replace")))
            message = (objs[0].get("message") or objs[0].get("cause")) if objs \
                else body.decode(errors="replace")
            raise EngineError(f"podman: {what} failed: {first_line(str(message))}")
        return bytes(body)

    def _check_stream(self, what: str, body: bytes) -> None:
        """libpod answers 200 and reports a failed push or pull inside the body."""
        for obj in _json_objects(body.decode(errors="replace")):
            if err := _stream_error(obj):
                raise EngineError(f"podman: {what} failed: {first_line(err)}")

    def save(self, ref: str) -> bytes:
        return self._raw("GET", f"save {ref}", f"/images/{ref}/get", TRANSFER_TIMEOUT_S,
                         params={"format": "docker-archive"})

    def load(self, data: bytes, timeout_s: float) -> None:
        self._raw("POST", "load", "/images/load", timeout_s, data=data,
                  headers={"content-type": "application/x-tar"})

    def push(self, ref: str, dest: str, timeout_s: float) -> None:
        body = self._raw("POST", f"push {dest}", f"/images/{ref}/push", timeout_s,
                         params={"destination": dest, "tlsVerify": "false"})
        self._check_stream(f"push {dest}", body)

    def pull(self, ref: str, timeout_s: float) -> None:
        # not quiet: libpod streams progress while it pulls, so a slow pull keeps answering
        # within the read timeout and only a hung service is taken for one
        body = self._raw("POST", f"pull {ref}", "/images/pull", timeout_s,
                         params={"reference": ref, "tlsVerify": "false", "quiet": "false"})
        self._check_stream(f"pull {ref}", body)


def driver_for(runtime: Runtime) -> ImageDriver | None:
    if isinstance(runtime, DockerRuntime):
        return DockerImages(runtime)
    if isinstance(runtime, PodmanRuntime):
        return PodmanImages(runtime)
    return None


def not_applicable_reason(runtime: Runtime) -> str:
    if runtime.kind == "oci":
        return (f"{runtime.name} is a bare OCI runtime: it runs a bundle's rootfs and has no "
                "image store to load or pull into")
    if runtime.kind == "command":
        return f"{runtime.name} is a command runtime: forge cannot load or pull images with it"
    return f"forge has no image driver for {runtime.name} (docker and podman only)"


# -- the registry ---------------------------------------------------------------------------



class Registry:
    """The few registry v2 API calls the benchmark needs, over plain HTTP (loopback
    registries), falling back to HTTPS for a registry that only speaks TLS."""

    def __init__(self, address: str, timeout_s: float = 30.0) -> None:
        import requests

        self.address = address
        self.timeout_s = timeout_s
        self.base = f"http://{address}"
        self.session = requests.Session()

    def _why(self, exc: BaseException) -> str:
        text = f"{exc!r} {exc}"
        if "Connection refused" in text or "ConnectionRefused" in text:
            return "connection refused"
        if is_timeout(exc):
            return f"no answer within {PROBE_TIMEOUT_S:g} s"
        if "NameResolution" in text or "Name or service not known" in text:
            return "unknown host"
        return first_line(str(exc)) or type(exc).__name__

    def probe(self) -> None:
        import requests

        hint = "start one or pass --registry"
        try:
            resp = self.session.get(f"{self.base}/v2/", timeout=PROBE_TIMEOUT_S)
            if resp.status_code == 400 and "HTTPS" in resp.text:
                self.base = f"https://{self.address}"
                resp = self.session.get(f"{self.base}/v2/", timeout=PROBE_TIMEOUT_S)
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"registry {self.address} does not answer: "
                                      f"{self._why(exc)}; {hint}") from None
        if resp.status_code == 401:
            raise RegistryUnavailable(f"registry {self.address} requires authentication and "
                                      f"forge pushes without credentials; {hint}")
        if resp.status_code != 200 or "registry/2.0" not in resp.headers.get(
                "Docker-Distribution-Api-Version", "registry/2.0"):
            raise RegistryUnavailable(f"registry {self.address} does not answer: /v2/ gave HTTP "
                                      f"{resp.status_code}, not a registry v2 API; {hint}")

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        import requests

        try:
            return self.session.request(method, f"{self.base}{path}", timeout=self.timeout_s,
                                        **kwargs)
        except requests.RequestException as exc:
            raise EngineError(f"registry {self.address}: {method} {path} failed: "
                              f"{self._why(exc)}") from None

    def manifest(self, repo: str, tag: str) -> tuple[str, dict[str, Any], int] | None:
        """(digest, manifest, its size in bytes) of ``repo:tag``, or None when the registry
        has no such tag."""
        resp = self._request("GET", f"/v2/{repo}/manifests/{tag}",
                             headers={"Accept": MANIFEST_TYPES})
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise EngineError(f"registry {self.address}: manifest {repo}:{tag} gave HTTP "
                              f"{resp.status_code}")
        digest = resp.headers.get("Docker-Content-Digest") or \
            "sha256:" + hashlib.sha256(resp.content).hexdigest()
        return digest, dict(resp.json()), len(resp.content)

    def delete_tag(self, repo: str, tag: str) -> bool:
        """Delete the manifest ``repo:tag`` points at (its tags go with it)."""
        found = self.manifest(repo, tag)
        if found is None:
            return False
        resp = self._request("DELETE", f"/v2/{repo}/manifests/{found[0]}")
        if resp.status_code not in (200, 202, 404):
            raise EngineError(f"registry {self.address}: deleting {repo}:{tag} gave HTTP "
                              f"{resp.status_code} (is delete enabled in its config?)")
        return resp.status_code != 404

    def tags(self, repo: str) -> list[str]:
        resp = self._request("GET", f"/v2/{repo}/tags/list")
        if resp.status_code == 404:
            return []
        if resp.status_code >= 400:
            raise EngineError(f"registry {self.address}: tags of {repo} gave HTTP "
                              f"{resp.status_code}")
        return list(resp.json().get("tags") or [])

    def transfer_bytes(self, repo: str, tag: str) -> int | None:
        """What a pull downloads: manifest, config and (compressed) layers."""
        found = self.manifest(repo, tag)
        if found is None:
            return None
        man = found[1]
        sizes = [man.get("config", {}).get("size", 0)]
        sizes += [layer.get("size", 0) for layer in man.get("layers", [])]
        return int(sum(sizes)) + found[2]

    def close(self) -> None:
        self.session.close()


# -- measuring ------------------------------------------------------------------------------

@dataclass
class ImageRun(RuntimeRun):
    """One engine's part in the run: its samples and errors, and what it holds right now."""

    driver: ImageDriver | None = None
    clock: Clock = time.perf_counter
    target: str = ""
    """The reference each load or pull (re)creates."""
    payload: bytes = b""
    """The saved image, loaded on every iteration (load mode)."""
    present: set[str] = field(default_factory=set)
    """IDs of this run's images on the engine now (removed before each iteration)."""
    seen: set[str] = field(default_factory=set)
    transfer_bytes: int | None = None


def purge(driver: ImageDriver, is_target: Callable[[str], bool],
          extra_ids: Iterable[str] = ()) -> int:
    """Remove every image whose tags are all targets, by ID; where an image also carries a tag
    that is not a target, remove only the target tags. Returns how many removals were made."""
    removed = 0
    for img in driver.list_images():
        targets = [t for t in img.tags if is_target(t)]
        if not targets:
            continue
        if len(targets) == len(img.tags):
            driver.remove(img.id, force=True)
            removed += 1
        else:
            for t in targets:
                driver.remove(t, force=False)
                removed += 1
    for image_id in extra_ids:  # the run's own untagged images, if any
        facts = driver.inspect(image_id)
        if facts is not None and all(is_target(t) for t in facts.tags):
            driver.remove(image_id, force=True)
            removed += 1
    return removed


def sweep_dead_images(drivers: Sequence[ImageDriver], registry: Registry | None,
                      log: Log = lambda _m: None) -> int:
    """Remove temporary images of forge runs that died without cleaning up (SIGKILL, power
    loss); live runs' images, and anything whose owner we cannot judge, are left alone."""
    def dead(ref: str) -> bool:
        name, tag = split_ref(ref)
        return name == TEMP_REPO and tag_owner_dead(tag)

    removed = 0
    for d in drivers:
        try:
            removed += purge(d, dead)
        except ForgeError as exc:
            log(f"{d.name}: could not sweep dead runs' temporary images: {exc}")
    if registry is not None:
        try:
            for tag in registry.tags(TEMP_REPO):
                if tag_owner_dead(tag):
                    removed += registry.delete_tag(TEMP_REPO, tag)
        except ForgeError as exc:
            log(f"could not sweep dead runs' images from the registry: {exc}")
    return removed


class ImageBench:
    """Runs the iterations on each engine in turn, then removes everything the run made."""

    def __init__(self, runs: Sequence[ImageRun], ctx: RunContext, source: str,
                 tar_path: Path, registry: Registry | None = None, *,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 log: Log = lambda _m: None, settle_s: float = SETTLE_S) -> None:
        self.runs = list(runs)
        self.ctx = ctx
        self.source = source
        self.tar_path = tar_path
        self.registry = registry
        self.progress = progress or (lambda *_a: None)
        self.cancel = cancel or threading.Event()
        self.log = log
        self.settle_s = settle_s
        self.tag = temp_tag(ctx)
        self.local_ref = f"{TEMP_REPO}:{self.tag}"
        self.remote_ref = f"{registry.address}/{TEMP_REPO}:{self.tag}" if registry else ""
        self.pushed = False
        """True from the moment a push starts: cleanup then deletes the registry tag."""
        self.pushed_by: str | None = None
        self.busy = False
        """An engine or registry call is in flight: an interrupt now may race with it."""

    def own(self, ref: str) -> bool:
        return is_temp_ref(ref, self.tag)

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        self.busy = True
        try:
            yield
        except ForgeError:
            self.busy = False  # the engine answered: nothing is left in flight
            raise
        self.busy = False

    @staticmethod
    def _driver(run: ImageRun) -> ImageDriver:
        assert run.driver is not None
        return run.driver

    # -- preparing ----------------------------------------------------------------------------
    def _import(self, run: ImageRun) -> None:
        d = self._driver(run)
        self.log(f"importing {self.local_ref} into {run.runtime.name}")
        with self._call():
            d.import_tar(self.tar_path, self.local_ref)
        facts = d.inspect(self.local_ref)
        if facts is None:
            raise EngineError(f"{run.runtime.name}: {self.local_ref} is missing right after "
                              "its import")
        run.present.add(facts.id)
        run.seen.add(facts.id)

    def _prepare_load(self, run: ImageRun) -> None:
        self._import(run)
        run.target = self.local_ref
        with self._call():
            run.payload = self._driver(run).save(self.local_ref)
        run.transfer_bytes = len(run.payload)

    def _prepare_pull(self) -> None:
        assert self.registry is not None
        for run in self.runs:
            run.target = self.remote_ref
        for run in self.runs:
            if run.stopped:
                continue
            try:
                self._import(run)
                self.log(f"pushing {self.remote_ref} from {run.runtime.name}")
                self.pushed = True
                with self._call():
                    self._driver(run).push(self.local_ref, self.remote_ref, TRANSFER_TIMEOUT_S)
            except ForgeError as exc:
                run.errors.append(str(exc))
                continue
            self.pushed_by = run.runtime.name
            break
        if self.pushed_by is None:
            for run in self.runs:
                run.stopped = True
                if not run.errors:
                    run.errors.append(f"no engine could push {self.remote_ref}")
            return
        size = None
        with contextlib.suppress(ForgeError):  # only a figure for the report
            size = self.registry.transfer_bytes(TEMP_REPO, self.tag)
        for run in self.runs:
            run.transfer_bytes = size

    def prepare(self) -> None:
        if self.source == "pull":
            self._prepare_pull()
            return
        for run in self.runs:
            try:
                self._prepare_load(run)
            except ForgeError as exc:
                run.errors.append(str(exc))
                run.stopped = True

    # -- one iteration ------------------------------------------------------------------------
    def _remove_own(self, run: ImageRun, image_id: str) -> None:
        """Remove one of this run's images by ID, having checked it carries no other tag."""
        d = self._driver(run)
        facts = d.inspect(image_id)
        if facts is None:
            run.present.discard(image_id)
            return
        foreign = [t for t in facts.tags if not self.own(t)]
        if foreign:
            raise EngineError(f"{run.runtime.name}: image {image_id[:19]} is also tagged "
                              f"{foreign[0]}; forge removes only its own temporary images, so "
                              "the run cannot go on cold")
        with self._call():
            d.remove(image_id, force=True)
        if d.inspect(image_id) is not None:
            raise EngineError(f"{run.runtime.name}: image {image_id[:19]} is still present "
                              "after its removal, so the next load or pull would not be cold")
        run.present.discard(image_id)

    def _evict(self, run: ImageRun) -> None:
        for image_id in sorted(run.present):
            self._remove_own(run, image_id)
        facts = self._driver(run).inspect(run.target)
        if facts is not None:
            self._remove_own(run, facts.id)

    def iteration(self, run: ImageRun) -> Sample:
        d = self._driver(run)
        self._evict(run)
        clock = run.clock
        with self._call():
            t0 = clock()
            if self.source == "load":
                d.load(run.payload, TRANSFER_TIMEOUT_S)
            else:
                d.pull(run.target, TRANSFER_TIMEOUT_S)
            elapsed = ms(clock() - t0)
        facts = d.inspect(run.target)
        if facts is None:
            raise EngineError(f"{run.runtime.name}: the {self.source} reported success but "
                              f"{run.target} is not present")
        run.present.add(facts.id)
        run.seen.add(facts.id)
        return Sample(elapsed, {self.source: elapsed})

    def _one(self, run: ImageRun, keep: bool) -> None:
        if run.stopped:
            return
        try:
            sample = self.iteration(run)
        except ForgeError as exc:
            run.record_failure(exc)  # the runner's rule: a hung engine is given up at once
            return
        run.consecutive_errors = 0
        if keep:
            run.samples.append(sample)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("cancelled; the run's temporary images were removed")

    def run(self, iterations: int, warmup: int = 0) -> list[ImageRun]:
        try:
            self.prepare()
            for run in self.runs:
                for w in range(warmup):
                    self._check_cancel()
                    self._one(run, keep=False)
                    self.progress(run.runtime.name, w + 1, warmup, True)
                for i in range(iterations):
                    self._check_cancel()
                    self._one(run, keep=True)
                    self.progress(run.runtime.name, i + 1, iterations, False)
                    if run.stopped:
                        break
        finally:
            with signals_deferred():
                self.cleanup()
        return self.runs

    # -- cleanup ------------------------------------------------------------------------------
    def _cleanup_once(self) -> list[str]:
        problems: list[str] = []
        for run in self.runs:
            try:
                purge(self._driver(run), self.own, run.seen | run.present)
                run.present.clear()
            except EngineTimeout as exc:
                # hung earlier: the adapter refused without asking it again; the next run's
                # sweep removes these images once the engine answers and this process is gone
                problems.append(f"{exc}; its temporary images are left for the next run's "
                                "sweep")
            except ForgeError as exc:
                problems.append(f"{run.runtime.name}: {exc}")
        if self.pushed and self.registry is not None:
            try:
                self.registry.delete_tag(TEMP_REPO, self.tag)
            except ForgeError as exc:
                problems.append(str(exc))
        return problems

    def cleanup(self) -> None:
        """Never raises: what could not be removed is logged, and a later run's sweep removes
        it once this process is gone."""
        rounds = 3 if self.busy else 1
        problems: list[str] = []
        for n in range(rounds):
            if n:
                time.sleep(self.settle_s)
            try:
                problems = self._cleanup_once()
            except Exception as exc:  # noqa: BLE001 - cleanup must never raise
                problems = [f"{type(exc).__name__}: {exc}"]
        self.busy = False
        for p in problems:
            self.log(f"cleanup: {p}")


# -- the document ---------------------------------------------------------------------------

def runtime_entry(run: ImageRun, source: str) -> dict[str, Any]:
    totals = [s.total_ms for s in run.samples]
    entry: dict[str, Any] = {
        "runtime": run.runtime.name,
        "kind": run.runtime.kind,
        "version": run.info.version,
        "source": source,
        "samples": [s.to_dict() for s in run.samples],
        "stats": None,
        "transfer_bytes": run.transfer_bytes,
        "warnings": [],
        "errors": run.errors,
        "not_applicable": None,
    }
    if totals:
        summary = stats.summarize(totals)
        entry["stats"] = summary.to_dict()
        entry["warnings"] = stats.reliability_warnings(totals, summary.outliers)
    return entry


def not_applicable_entry(runtime: Runtime, source: str, reason: str,
                         version: str | None) -> dict[str, Any]:
    return {"runtime": runtime.name, "kind": runtime.kind, "version": version,
            "source": source, "samples": [], "stats": None, "transfer_bytes": None,
            "warnings": [], "errors": [], "not_applicable": reason}


# -- entry point ----------------------------------------------------------------------------

def resolve(config: Config, names: Sequence[str]) -> tuple[list[Runtime], list[Runtime]]:
    """(engines to measure, runtimes named explicitly that the benchmark does not apply to).
    Unnamed runtimes without an image store are skipped silently."""
    if not names:
        selected, _ = select_runtimes(config, None, kinds=("engine",))
        measurable = [r for r in selected if driver_for(r) is not None]
        for r in selected:
            if r not in measurable:
                r.close()
        if not measurable:
            raise RuntimeUnavailable("no docker or podman engine is available for the image "
                                     "benchmark; start one (`make run` starts both)")
        return measurable, []
    known = {r.name: r for r in known_runtimes(config)}
    na: list[Runtime] = []
    try:
        unknown = [n for n in names if n not in known]
        if unknown:
            select_runtimes(config, unknown)  # raises its "unknown runtime" error
        wanted = list(dict.fromkeys(names))
        na = [known[n] for n in wanted if driver_for(known[n]) is None]
        engines = [n for n in wanted if known[n] not in na]
    finally:
        for r in known.values():
            if r not in na:
                r.close()
    if not engines:
        for r in na:
            r.close()
        raise UsageError(f"{not_applicable_reason(na[0])}; the image benchmark measures "
                         "docker and podman")
    try:
        selected, _ = select_runtimes(config, engines)
    except BaseException:
        for r in na:
            r.close()
        raise
    return selected, na


def run_image_bench(opts: ImageOptions, config: Config, *, progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None, log: Log = lambda _m: None,
                    wait: bool = False) -> tuple[dict[str, Any], Path | None]:
    Prepared = tuple[ImageBench, list[Runtime], dict[str, RuntimeInfo], int]

    def prepare(s: Session) -> Prepared:
        registry: Registry | None = None
        if opts.needs_registry():
            registry = Registry(opts.registry_address(), config.timeout_s)
            s.on_exit(contextlib.closing(registry))
            registry.probe()
        selected, na = resolve(config, opts.runtimes)
        s.on_exit(_closing_all([*selected, *na]))
        use_registry = registry if opts.source == "pull" else None
        sweep_dead(selected)
        drivers = {r.name: driver_for(r) for r in selected}
        swept = sweep_dead_images([d for d in drivers.values() if d is not None],
                                  use_registry, s.log)
        if swept:
            s.log(f"removed {swept} temporary image(s) left by forge runs that died")
        infos = {r.name: r.info() for r in [*selected, *na]}
        runs = [ImageRun(r, infos[r.name], driver=drivers[r.name],
                         clock=getattr(r, "clock", time.perf_counter)) for r in selected]
        tmp = s.on_exit(tempfile.TemporaryDirectory(prefix="forge-image-bench-"))
        tar = build_temp_tar(Path(tmp) / "image.tar", s.ctx.run_id)
        bench = ImageBench(runs, s.ctx, opts.source, tar, use_registry, progress=s.progress,
                           cancel=s.cancel, log=s.log)
        return bench, na, infos, tar.stat().st_size

    def measure(s: Session, prepared: Prepared) -> Measured:
        bench, na, infos, image_bytes = prepared
        s.log(f"measuring cold {opts.source}s of {bench.local_ref} "
              f"({image_bytes / 1e6:.1f} MB layer)")
        runs = bench.run(opts.iterations, opts.warmup)
        parameters = {
            "source": opts.source,
            "registry": bench.registry.address if bench.registry else None,
            "iterations": opts.iterations,
            "warmup": opts.warmup,
            "image_bytes": image_bytes,
            "image": bench.remote_ref if bench.registry else bench.local_ref,
            "pushed_by": bench.pushed_by,
        }
        entries = [runtime_entry(r, opts.source) for r in runs]
        entries += [not_applicable_entry(r, opts.source, not_applicable_reason(r),
                                         infos[r.name].version) for r in na]
        nothing = None
        if not any(r.samples for r in runs):
            errors = "; ".join(f"{r.runtime.name}: {r.errors[-1]}" for r in runs if r.errors)
            nothing = f"no engine completed an iteration ({errors})"
        return Measured(entries, parameters, list(infos.values()), runs=runs,
                        iterations=opts.iterations, nothing_measured=nothing)

    session = Session("image", config, progress=progress, cancel=cancel, log=log, wait=wait)
    try:
        return session.run(opts, prepare, measure)
    except KeyboardInterrupt:  # cleanup has run by now (ImageBench.run's finally)
        raise Interrupted("interrupted; the run's temporary images were removed") from None


@contextlib.contextmanager
def _closing_all(runtimes: Sequence[Runtime]) -> Iterator[None]:
    try:
        yield
    finally:
        for r in runtimes:
            with contextlib.suppress(Exception):
                r.close()
