"""Docker through the Docker SDK's low-level APIClient (one HTTP call per phase)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from forge_desktop import safetar
from forge_desktop.errors import (
    EngineError,
    EngineTimeout,
    ForgeError,
    ImageError,
    RuntimeUnavailable,
)
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
from forge_desktop.procfs import find_pids
from forge_desktop.runtimes import transport
from forge_desktop.runtimes.base import Footprint, ImageFacts, StoreReport, is_leftover
from forge_desktop.runtimes.common import (
    MAX_IN_FLIGHT,
    Clock,
    connection_failed,
    explain_connection_error,
    first_line,
    is_timeout,
    json_objects,
    known_sum,
    ms,
    overlay_layer_dirs,
    size_or_none,
    split_tag,
    stream_error,
    timed_cmd,
    to_exec_ms,
    unix_get_json,
)

if TYPE_CHECKING:
    import docker


START_HINT = "start it (`sudo systemctl start docker`, or `make run` in the forge checkout)"


def _endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


_EMPTY_AUTH = base64.urlsafe_b64encode(b"{}").decode()


def docker_df_fields(df: dict[str, Any]) -> dict[str, Any]:
    """Disk entry fields from docker's ``GET /system/df``, reclaimable counted as ``docker
    system df`` does: images no container uses, stopped containers' writable layers, volumes
    no container references, build cache neither shared nor in use."""
    images_raw = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    cache = df.get("BuildCache") or []
    images = []
    used_by_containers = 0
    for img in images_raw:
        tags = [t for t in (img.get("RepoTags") or []) if t != "<none>:<none>"]
        size, shared = size_or_none(img.get("Size")), size_or_none(img.get("SharedSize"))
        images.append({"id": img.get("Id"), "tags": tags, "size_bytes": size,
                       "shared_bytes": shared})
        if (img.get("Containers") or 0) > 0 and size is not None:
            used_by_containers += size - (shared or 0)
    images_bytes = size_or_none(df.get("LayersSize"))
    if images_bytes is None:
        images_bytes = known_sum([i["size_bytes"] for i in images])
    stopped = [c for c in containers if c.get("State") != "running"]
    volume_sizes = [size_or_none((v.get("UsageData") or {}).get("Size")) for v in volumes]
    unused_volumes = [size_or_none((v.get("UsageData") or {}).get("Size")) for v in volumes
                      if (v.get("UsageData") or {}).get("RefCount", 0) == 0]
    build_cache = size_or_none(df.get("BuilderSize"))
    if build_cache is None:
        build_cache = known_sum([size_or_none(c.get("Size")) for c in cache])
    reclaimable = (max(images_bytes - used_by_containers, 0)
                   + known_sum([size_or_none(c.get("SizeRw")) for c in stopped])
                   + known_sum(unused_volumes)
                   + known_sum([size_or_none(c.get("Size")) for c in cache
                                if not c.get("Shared") and not c.get("InUse")]))
    return {
        "images_bytes": images_bytes,
        "containers_bytes": known_sum([size_or_none(c.get("SizeRw")) for c in containers]),
        "volumes_bytes": known_sum(volume_sizes),
        "build_cache_bytes": build_cache,
        "images": images,
        "dangling_images": sum(1 for i in images if not i["tags"]),
        "stopped_containers": len(stopped),
        "reclaimable_bytes": reclaimable,
    }


def docker_layer_dirs(graph_driver: dict[str, Any]) -> dict[str, str]:
    """Docker's container layer, its work dir and its ``-init`` layer."""
    return overlay_layer_dirs(graph_driver)


CALLS_PER_LIFECYCLE = 4
"""API calls inside one measured lifecycle of ``run_once``: create, start, wait, remove (the
inspect between them is taken out of the total)."""


class DockerRuntime:
    name = "docker"
    kind: RuntimeKind = "engine"

    def __init__(self, timeout_s: float = 30.0, clock: Clock = time.perf_counter,
                 remote: transport.Remote | None = None) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self.remote = remote
        """Transport mode: the docker context's ssh endpoint this adapter drives."""
        self._dialer: transport.Dialer | None = None
        if remote is not None:
            self.name = remote.runtime_name
            self.endpoint = remote.host.url
        else:
            self.endpoint = _endpoint()
        self._client: docker.APIClient | None = None
        self._reason: str | None = None
        self._checked = False
        self.hung = False
        """Set when a call timed out: later cleanup calls would hang too, so they are skipped
        (the next run sweeps this run's containers once the daemon answers again)."""

    # -- connection -------------------------------------------------------------------------
    def _hung_reason(self) -> str:
        return (f"{self.endpoint} did not answer within {self.timeout_s:g} s earlier in this "
                "run; it is not asked again (is the daemon hung?)")

    def client(self) -> docker.APIClient:
        if self.hung:
            # every later call would wait out the timeout again: fail at once instead, so a
            # hung daemon costs the run one timeout, not one per remaining call
            raise EngineTimeout(f"{self.name}: {self._hung_reason()}")
        if self._client is not None:
            return self._client
        if self._checked and self._reason:
            raise RuntimeUnavailable(f"{self.name}: {self._reason}")
        self._checked = True
        try:
            import docker
            from docker.utils import kwargs_from_env
        except ImportError:  # pragma: no cover - dependency of the package
            self._reason = "the docker Python SDK is not installed (pip install docker)"
            raise RuntimeUnavailable(f"{self.name}: {self._reason}") from None
        try:
            if self.remote is not None:
                client = self._remote_client()
            else:
                client = docker.APIClient(version="auto", timeout=self.timeout_s,
                                          max_pool_size=MAX_IN_FLIGHT, **kwargs_from_env())
            client.ping()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            why = self._dialer.failure() if self._dialer is not None else None
            self._reason = why or explain_connection_error(exc, self.endpoint, "docker",
                                                           START_HINT)
            if self._dialer is not None:
                self._dialer.close()
            raise RuntimeUnavailable(f"{self.name}: {self._reason}") from None
        self._client = client
        return client

    def _remote_client(self) -> docker.APIClient:
        """A client whose connections are ssh ``docker system dial-stdio`` (transport.py)."""
        import docker

        from forge_desktop.runtimes.docker_ssh import DialAdapter

        assert self.remote is not None
        self._dialer = transport.Dialer(self.remote.host, ["docker", "system", "dial-stdio"],
                                        self.timeout_s)
        # the API version is asked once the adapter is mounted: the SDK would ask through a
        # unix socket at construction
        client = docker.APIClient(base_url="unix:///forge-transport-mode",
                                  version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                                  timeout=self.timeout_s)
        adapter = DialAdapter(self._dialer.dial, self.timeout_s, MAX_IN_FLIGHT)
        client.mount("http+docker://", adapter)
        client._custom_adapter = adapter
        client._version = client._retrieve_server_version()
        return client

    def transport_figures(self) -> dict[str, Any]:
        """What one API call over the context's ssh costs, and the same ``/_ping`` on the
        daemon's own socket when this machine has it (a loopback host whose daemon answers
        with the same ID)."""
        assert self.remote is not None
        client = self.client()
        try:
            remote_id = client.info().get("ID")
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("info", exc) from None
        local_call = None
        why: str | None = (f"unknown: {self.remote.host.hostname} is not this machine; run "
                           "forge there (--host) to time a call on its own socket")
        if transport.is_loopback(self.remote.host.hostname):
            there = transport.remote_env(self.remote.host, "DOCKER_HOST", self.timeout_s)
            path = transport.local_socket(
                [there, "unix:///var/run/docker.sock"],
                lambda p: json.loads(transport.unix_get(p, "/info", self.timeout_s)).get("ID"),
                remote_id)
            if path is not None:
                def local_call() -> object:
                    return transport.unix_get(path, "/_ping", self.timeout_s)
            else:
                why = "unknown: no socket here answers as the context's daemon"
        try:
            return transport.transport_figures(self.remote, client.ping, local_call, why,
                                               CALLS_PER_LIFECYCLE)
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("ping", exc) from None

    def available(self) -> str | None:
        if self.hung:
            return self._hung_reason()
        try:
            self.client()
        except RuntimeUnavailable:
            return self._reason
        return None

    def info(self) -> RuntimeInfo:
        reason = self.available()
        if reason:
            return RuntimeInfo(self.name, "engine", False, endpoint=self.endpoint, reason=reason)
        client = self.client()
        try:
            version = client.version().get("Version")
            data = client.info()
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("version", exc) from None
        # a rootless dockerd on cgroup v1 ignores --memory/--pids-limit
        rootless = any("rootless" in str(o) for o in data.get("SecurityOptions") or [])
        return RuntimeInfo(self.name, "engine", True, version=version, endpoint=self.endpoint,
                           storage_driver=data.get("Driver"),
                           cgroup_limits=not (rootless and data.get("CgroupVersion") != "2"),
                           transport=self.transport_figures() if self.remote else None)

    def engine_error(self, what: str, exc: BaseException) -> ForgeError:
        """The one mapping of a docker SDK/requests failure to a ForgeError, for this adapter
        and everything else that talks to this engine (the image benchmark's store calls):
        a timeout marks the daemon hung, so no later call waits for it again."""
        text = getattr(exc, "explanation", None) or str(exc)
        if is_timeout(exc):
            self.hung = True
            return EngineTimeout(f"{self.name}: {what} did not answer within {self.timeout_s:g} s")
        if connection_failed(exc):
            # the daemon went away mid-run (killed, crashed, socket removed): say so in words,
            # and as RuntimeUnavailable, so the runner stops at once instead of retrying
            return RuntimeUnavailable(f"{self.name}: " + explain_connection_error(
                exc, self.endpoint, "docker", START_HINT))
        return EngineError(f"{self.name}: {what} failed: {first_line(str(text))}")

    # -- images -----------------------------------------------------------------------------
    def has_image(self, image: str) -> bool:
        from docker.errors import ImageNotFound, NotFound

        client = self.client()
        try:
            client.inspect_image(image)
        except (ImageNotFound, NotFound):
            return False
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("image inspect", exc) from None
        return True

    def image_layers(self, image: str) -> list[str]:
        try:
            data = self.client().inspect_image(image)
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("image inspect", exc) from None
        return list(data.get("RootFS", {}).get("Layers", []))

    def import_tar(self, tar_path: Path, image: str) -> None:
        repo, _, tag = image.rpartition(":")
        try:
            self.client().import_image(src=str(tar_path), repository=repo, tag=tag)
        except Exception as exc:  # noqa: BLE001
            if is_timeout(exc) or connection_failed(exc):  # hung or gone, not a bad tar
                raise self.engine_error(f"import {tar_path}", exc) from None
            raise ImageError(f"docker could not import {tar_path}: {first_line(str(exc))}") \
                from None

    def export_rootfs(self, image: str, dest: Path, ctx: RunContext) -> None:
        """Unpack the image's filesystem into ``dest`` (for bare OCI bundles)."""
        client = self.client()
        cid: str | None = None
        try:
            # a signal during the request waits for its answer: the daemon makes the container
            # even if the client stops listening, and then only its id removes it for sure
            with signals_deferred("interrupted; the bundle's container was removed"):
                try:
                    cid = client.create_container(image, command=["true"],
                                                  labels=ctx.labels())["Id"]
                except Exception as exc:  # noqa: BLE001
                    raise self.engine_error("create", exc) from None
            try:
                data = b"".join(client.export(cid))
            except Exception as exc:  # noqa: BLE001
                raise self.engine_error(f"export {image}", exc) from None
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                safetar.extract(tar, dest)
        finally:
            if cid is not None:
                self._remove_quietly(cid)
            else:  # interrupted (Ctrl-C, SIGTERM) or failed mid-create: the daemon may have
                # made it all the same, and docker is not always a runtime of this run, whose
                # cleanup would take it: remove it by the run's label now
                with contextlib.suppress(Exception):
                    self.cleanup(ctx.run_id)

    # -- the image store (ImageStore: the image benchmark) ---------------------------------
    def inspect_image(self, ref: str) -> ImageFacts | None:
        from docker.errors import ImageNotFound, NotFound

        try:
            data = self.client().inspect_image(ref)
        except (ImageNotFound, NotFound):
            return None
        except Exception as exc:  # noqa: BLE001 - every engine failure becomes one line
            raise self.engine_error(f"inspect {ref}", exc) from None
        return ImageFacts(data["Id"], tuple(data.get("RepoTags") or ()))

    def list_images(self) -> list[ImageFacts]:
        try:
            images = self.client().images()
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("image list", exc) from None
        return [ImageFacts(i["Id"], tuple(t for t in i.get("RepoTags") or ()
                                          if t != "<none>:<none>")) for i in images]

    def remove_image(self, ref: str, force: bool) -> None:
        from docker.errors import ImageNotFound, NotFound

        try:
            self.client().remove_image(ref, force=force)
        except (ImageNotFound, NotFound):
            return
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error(f"remove {ref}", exc) from None

    def save_image(self, ref: str) -> bytes:
        try:
            return b"".join(self.client().get_image(ref))
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error(f"save {ref}", exc) from None

    def _post_stream(self, what: str, path: str, timeout_s: float, *, params: dict[str, Any],
                     data: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        """POST through the SDK's raw ``post`` (its ``pull`` passes ``timeout=None``) and read
        the streamed answer to its end; an ``error`` object in a 200 answer is a failure too.
        A daemon silent for the adapter's timeout is hung; one still streaming after
        ``timeout_s`` is only too slow."""
        client = self.client()
        url = f"{client.base_url}/v{client.api_version}{path}"
        deadline = time.monotonic() + timeout_s
        try:
            resp = client.post(url, params=params, data=data, headers=headers or {},
                               stream=True, timeout=(self.timeout_s,
                                                     min(timeout_s, self.timeout_s)))
            with contextlib.closing(resp):
                if resp.status_code >= 400:
                    objs = list(json_objects(resp.text))
                    message = objs[0].get("message") if objs else resp.text
                    raise EngineError(f"{self.name}: {what} failed: {first_line(str(message))}")
                for line in resp.iter_lines():
                    if time.monotonic() > deadline:
                        raise EngineError(f"{self.name}: {what} did not finish within "
                                          f"{timeout_s:g} s")
                    for obj in json_objects(line.decode(errors="replace")):
                        if err := stream_error(obj):
                            raise EngineError(f"{self.name}: {what} failed: {first_line(err)}")
        except ForgeError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error(what, exc) from None

    def load_image(self, data: bytes, timeout_s: float) -> None:
        self._post_stream("load", "/images/load", timeout_s, params={"quiet": "1"}, data=data,
                          headers={"Content-Type": "application/x-tar"})

    def push_image(self, ref: str, dest: str, timeout_s: float, tls_verify: bool = True) -> None:
        """Tag ``ref`` as ``dest`` and push it. ``tls_verify`` is dockerd's to decide (its
        insecure-registries, loopback by default), so it is not sent."""
        repo, tag = split_tag(dest)
        try:
            self.client().tag(ref, repo, tag)
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error(f"tag {ref} as {dest}", exc) from None
        self._post_stream(f"push {dest}", f"/images/{quote(repo, safe='/:')}/push", timeout_s,
                          params={"tag": tag}, headers={"X-Registry-Auth": _EMPTY_AUTH})

    def pull(self, image: str, timeout_s: float, tls_verify: bool = True) -> None:
        """The one pull, for preparing the benchmark image and for the image benchmark
        (``tls_verify``: see ``push_image``)."""
        repo, tag = split_tag(image)
        self._post_stream(f"pull {image}", "/images/create", timeout_s,
                          params={"fromImage": repo, "tag": tag},
                          headers={"X-Registry-Auth": _EMPTY_AUTH})

    # -- store usage (StoreUsage: the disk benchmark) --------------------------------------
    def store_usage(self, image: str) -> StoreReport:
        try:
            df = self.client().df()
            info = self.client().info()
        except Exception as exc:  # noqa: BLE001 - SDK and socket errors become one line
            raise self.engine_error("system df", exc) from None
        return StoreReport(docker_df_fields(df), info.get("DockerRootDir") or "/var/lib/docker")

    @contextlib.contextmanager
    def container_footprint(self, image: str, ctx: RunContext) -> Iterator[Footprint]:
        """A created (never started) container and the directories docker made for it."""
        client = self.client()
        try:
            info = client.info()
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("info", exc) from None
        root = info.get("DockerRootDir") or "/var/lib/docker"
        driver = info.get("Driver") or "overlay2"
        with signals_deferred():  # as in export_rootfs: the id is what removes it for sure
            try:
                cid = client.create_container(image, command=["true"], labels=ctx.labels(),
                                              host_config=self.host_config(RunSpec(image)))["Id"]
            except Exception as exc:  # noqa: BLE001
                raise self.engine_error("create", exc) from None
        fp = Footprint(cid)
        try:
            try:
                inspected = client.inspect_container(cid)
                listed = client.containers(all=True, size=True, filters={"id": cid})
            except Exception as exc:  # noqa: BLE001
                raise self.engine_error("inspect", exc) from None
            if listed:  # docker leaves SizeRw out when it is 0
                fp.size_rw_bytes = size_or_none(listed[0].get("SizeRw", 0))
                fp.size_root_fs_bytes = size_or_none(listed[0].get("SizeRootFs"))
            fp.dirs = {"container_dir_bytes": os.path.join(root, "containers", cid)}
            layers = docker_layer_dirs(inspected.get("GraphDriver") or {})
            if "layer_bytes" not in layers:
                fp.complete = False
                fp.warnings.append(
                    f"the {driver} storage driver does not expose the container's layer "
                    "directory; per_container_bytes is not reported (see "
                    "container_size_rw_bytes)")
            else:
                fp.dirs.update(layers)
                layerdb = os.path.join(root, "image", driver, "layerdb", "mounts", cid)
                if os.path.isdir(layerdb):  # mount-id, init-id, parent: docker's record
                    fp.dirs["layerdb_bytes"] = layerdb
            yield fp
        finally:
            try:
                client.remove_container(cid, force=True)
            except Exception as exc:  # noqa: BLE001 - the run's cleanup retries by label
                fp.warnings.append(f"could not remove container {cid[:12]}: "
                                   f"{first_line(str(exc))}; the run's cleanup retries")

    # -- container facts (ContainerFacts: resources, the tray) ----------------------------
    default_store_root = "/var/lib/docker"

    def store_root(self) -> str | None:
        try:
            root = self.client().info().get("DockerRootDir")
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("info", exc) from None
        return str(root) if root else None

    def container_counts(self) -> tuple[int, int]:
        try:
            containers = self.client().containers(all=True)
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("container list", exc) from None
        return sum(1 for c in containers if c.get("State") == "running"), len(containers)

    def quick_running_count(self, timeout_s: float) -> int | None:
        data = unix_get_json(self.endpoint, "/containers/json", timeout_s)
        return len(data) if isinstance(data, list) else None

    # -- measuring --------------------------------------------------------------------------
    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        self.client()
        if spec.via == "cli" and not shutil.which("docker"):
            raise RuntimeUnavailable("docker: --via cli needs the docker command on PATH")

    def host_config(self, spec: RunSpec) -> dict[str, Any]:
        client = self.client()
        kwargs: dict[str, Any] = {
            "mem_limit": spec.memory_limit_bytes,
            "pids_limit": spec.pids_limit,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
        }
        if spec.network != "default":
            kwargs["network_mode"] = spec.network
        return dict(client.create_host_config(**kwargs))

    def cli_argv(self, spec: RunSpec, ctx: RunContext) -> list[str]:
        """The user's own ``docker run`` with the same container settings as the API path."""
        argv = ["docker", "run", "--rm", "--label", f"{LABEL_RUN}={ctx.run_id}",
                "--label", f"{LABEL_OWNER}={ctx.owner}",
                "--memory", str(spec.memory_limit_bytes), "--pids-limit", str(spec.pids_limit),
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only"]
        if spec.network != "default":
            argv += ["--network", spec.network]
        return [*argv, spec.image, *spec.command]

    def run_once(self, spec: RunSpec, ctx: RunContext, seq: int) -> Sample:
        if spec.via == "cli":
            total = timed_cmd(self.cli_argv(spec, ctx), self.timeout_s, "docker run",
                              self.clock)
            return Sample(total, {"run": total})
        client = self.client()
        clock = self.clock
        phases: dict[str, float] = {}
        wall0_ns = time.time_ns()
        t0 = clock()
        try:
            cid = client.create_container(spec.image, command=list(spec.command),
                                          labels=ctx.labels(), host_config=self.host_config(spec),
                                          network_disabled=False)["Id"]
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("create", exc) from None
        t1 = clock()
        phases["create"] = ms(t1 - t0)
        removed = False
        try:
            client.start(cid)
            t2 = clock()
            phases["start"] = ms(t2 - t1)
            status = client.wait(cid, timeout=self.timeout_s)
            t3 = clock()
            phases["wait"] = ms(t3 - t2)
            code = status.get("StatusCode", -1)
            if code != 0:
                logs = client.logs(cid, stdout=True, stderr=True).decode(errors="replace")
                raise EngineError(f"{self.name}: container exited with status {code}: "
                                  f"{first_line(logs) or '(no output)'}")
            # not part of the lifecycle: its time is taken out of the total below
            started = client.inspect_container(cid)["State"].get("StartedAt", "")
            t4 = clock()
            client.remove_container(cid, force=True)
            removed = True
            t5 = clock()
            phases["remove"] = ms(t5 - t4)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("container lifecycle", exc) from None
        finally:
            if not removed:
                self._remove_quietly(cid)
        return Sample(ms((t3 - t0) + (t5 - t4)), phases, to_exec_ms(started, wall0_ns))

    # -- long-running containers (memory benchmark) ---------------------------------------
    def daemon_pids(self) -> list[int]:
        """dockerd and its containerd; none when the daemon is remote (DOCKER_HOST=tcp://)."""
        if not self.endpoint.startswith("unix://"):
            return []
        return find_pids(lambda name, _cmd: name in ("dockerd", "containerd"))

    def engine_pids(self) -> list[int]:
        """The daemon's processes and docker's containerd-shims (namespace ``moby``: not those
        of a containerd another tool drives, such as a CRI one)."""
        if not self.endpoint.startswith("unix://"):
            return []
        return find_pids(lambda name, cmd: name in ("dockerd", "containerd") or "moby" in cmd,
                         named=lambda name: name in ("dockerd", "containerd")
                         or name.startswith("containerd-shim"))

    def start_detached(self, spec: RunSpec, ctx: RunContext, seq: int) -> str:
        client = self.client()
        try:
            cid: str = client.create_container(spec.image, command=list(spec.command),
                                               labels=ctx.labels(),
                                               host_config=self.host_config(spec))["Id"]
            client.start(cid)
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("start", exc) from None
        return cid

    def container_pid(self, cid: str) -> int:
        try:
            return int(self.client().inspect_container(cid)["State"]["Pid"])
        except Exception as exc:  # noqa: BLE001
            raise self.engine_error("inspect", exc) from None

    def remove_container(self, cid: str) -> None:
        self._remove_quietly(cid)

    # -- cleanup ----------------------------------------------------------------------------
    def _remove_quietly(self, cid: str) -> bool:
        if self.hung:
            return False
        try:
            assert self._client is not None
            self._client.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - cleanup must never raise
            return False
        return True

    def labelled(self) -> list[dict[str, Any]]:
        client = self.client()
        return list(client.containers(all=True, filters={"label": LABEL_RUN}))

    def cleanup(self, run_id: str | None = None) -> int:
        if self.hung:
            return 0
        try:
            containers = self.labelled()
        except Exception:  # noqa: BLE001 - engine gone: nothing we can remove now
            return 0
        removed = 0
        for c in containers:
            labels = c.get("Labels") or {}
            if run_id is not None:
                if labels.get(LABEL_RUN) != run_id:
                    continue
            elif not is_leftover(labels.get(LABEL_OWNER, ""), labels.get(LABEL_RUN, "")):
                continue
            removed += self._remove_quietly(c["Id"])
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._checked = False
        if self._dialer is not None:
            self._dialer.close()
