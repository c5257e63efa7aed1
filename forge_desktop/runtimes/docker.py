"""Docker through the Docker SDK's low-level APIClient (one HTTP call per phase)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
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
from forge_desktop.models import (
    LABEL_OWNER,
    LABEL_RUN,
    RunContext,
    RunSpec,
    RuntimeInfo,
    RuntimeKind,
    Sample,
)
from forge_desktop.profiling.procmem import find_pids
from forge_desktop.runtimes.base import is_leftover
from forge_desktop.runtimes.common import Clock, first_line, ms, timed_cmd, to_exec_ms

if TYPE_CHECKING:
    import docker


START_HINT = "start it (`sudo systemctl start docker`, or `make run` in the forge checkout)"


def _endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (``__cause__``, else ``__context__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_timeout(exc: BaseException) -> bool:
    """A read or connect timeout anywhere in the chain (podman-py hides it under APIError)."""
    return any("timed out" in str(e) or "Timeout" in type(e).__name__
               for e in exception_chain(exc))


def socket_permission_reason(sock: str) -> str:
    """Why this user may not use an engine's socket, and the one thing that fixes it: join
    the socket's group, or log in again when the group was joined after this session began
    (a process's groups are fixed at login)."""
    import grp
    import pwd
    import stat

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
        st = os.stat(sock)
        group = grp.getgrgid(st.st_gid)
    except (KeyError, OSError):
        return f"permission denied on {sock}; run forge as a user who may use it"
    mode = stat.S_IMODE(st.st_mode)
    if st.st_gid == 0 or mode & 0o060 != 0o060 or st.st_gid in os.getgroups():
        # the group cannot help (root's group, no group access) or is already ours
        return (f"permission denied on {sock} (mode {mode:o}, group {group.gr_name}); "
                "run forge as a user who may use it, e.g. root")
    if user in group.gr_mem or pwd.getpwnam(user).pw_gid == st.st_gid:
        return (f"permission denied on {sock}: {user} is in the '{group.gr_name}' group, but "
                f"this login session started before that; log in again (or run "
                f"`newgrp {group.gr_name}`)")
    return (f"permission denied on {sock}: add {user} to the '{group.gr_name}' group "
            f"(`sudo usermod -aG {group.gr_name} {user}`, then log in again)")


def explain_connection_error(exc: BaseException, endpoint: str, engine: str,
                             start_hint: str) -> str:
    """Turn a requests/socket failure into a sentence a user can act on."""
    # podman-py wraps the requests error in an APIError whose text is only the URL and
    # "(POST operation failed)": the cause (refused, reset, ...) is further down the chain
    text = " ".join(f"{e!r} {e}" for e in exception_chain(exc))
    sock = endpoint.removeprefix("unix://")
    if "PermissionError" in text or "Permission denied" in text:
        return socket_permission_reason(sock)
    if "FileNotFoundError" in text or "No such file" in text:
        return f"{engine} is not running: no socket at {sock}; {start_hint}"
    if "ConnectionRefused" in text or "Connection refused" in text:
        return f"{engine} is not running: {endpoint} refuses connections; {start_hint}"
    if "Timeout" in text or "timed out" in text:
        return f"{engine} at {endpoint} did not answer in time; is the daemon hung?"
    if any(s in text for s in ("RemoteDisconnected", "Connection aborted", "Connection reset",
                               "BrokenPipe")):
        # the daemon went away in the middle of a request (killed, crashed, restarted)
        return (f"{engine} at {endpoint} closed the connection in the middle of a request; "
                f"did it stop or crash? {start_hint}")
    return f"{engine} at {endpoint} cannot be reached: {first_line(str(exc))}"


def _connection_failed(exc: BaseException) -> bool:
    """requests could not reach the daemon or lost the connection (not an HTTP error)."""
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
    except ImportError:  # pragma: no cover - a dependency of the docker SDK
        return False
    return isinstance(exc, RequestsConnectionError)


class DockerRuntime:
    name = "docker"
    kind: RuntimeKind = "engine"

    def __init__(self, timeout_s: float = 30.0, clock: Clock = time.perf_counter) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
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
            raise EngineTimeout(f"docker: {self._hung_reason()}")
        if self._client is not None:
            return self._client
        if self._checked and self._reason:
            raise RuntimeUnavailable(f"docker: {self._reason}")
        self._checked = True
        try:
            import docker
            from docker.utils import kwargs_from_env
        except ImportError:  # pragma: no cover - dependency of the package
            self._reason = "the docker Python SDK is not installed (pip install docker)"
            raise RuntimeUnavailable(f"docker: {self._reason}") from None
        try:
            client = docker.APIClient(version="auto", timeout=self.timeout_s, **kwargs_from_env())
            client.ping()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            self._reason = explain_connection_error(exc, self.endpoint, "docker", START_HINT)
            raise RuntimeUnavailable(f"docker: {self._reason}") from None
        self._client = client
        return client

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
                           cgroup_limits=not (rootless and data.get("CgroupVersion") != "2"))

    def engine_error(self, what: str, exc: BaseException) -> ForgeError:
        """The one mapping of a docker SDK/requests failure to a ForgeError, for this adapter
        and everything else that talks to this engine (the image benchmark's store calls):
        a timeout marks the daemon hung, so no later call waits for it again."""
        text = getattr(exc, "explanation", None) or str(exc)
        if is_timeout(exc):
            self.hung = True
            return EngineTimeout(f"docker: {what} did not answer within {self.timeout_s:g} s")
        if _connection_failed(exc):
            # the daemon went away mid-run (killed, crashed, socket removed): say so in words,
            # and as RuntimeUnavailable, so the runner stops at once instead of retrying
            return RuntimeUnavailable("docker: " + explain_connection_error(
                exc, self.endpoint, "docker", START_HINT))
        return EngineError(f"docker: {what} failed: {first_line(str(text))}")

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
        data = self.client().inspect_image(image)
        return list(data.get("RootFS", {}).get("Layers", []))

    def pull(self, image: str, timeout_s: float) -> None:
        """The SDK's pull streams without a read timeout, so it runs in a worker thread that
        we stop waiting for after ``timeout_s``."""
        import threading

        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        client = self.client()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                client.pull(repo, tag=tag or "latest")
            except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=work, daemon=True, name="forge-docker-pull")
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            raise ImageError(f"docker could not pull {image} within {timeout_s:g} s; check the "
                             "registry or pull it yourself")
        if failure:
            raise ImageError(f"docker could not pull {image}: {first_line(str(failure[0]))}")

    def import_tar(self, tar_path: Path, image: str) -> None:
        repo, _, tag = image.rpartition(":")
        try:
            self.client().import_image(src=str(tar_path), repository=repo, tag=tag)
        except Exception as exc:  # noqa: BLE001
            if is_timeout(exc) or _connection_failed(exc):  # hung or gone, not a bad tar
                raise self.engine_error(f"import {tar_path}", exc) from None
            raise ImageError(f"docker could not import {tar_path}: {first_line(str(exc))}") \
                from None

    def export_rootfs(self, image: str, dest: Path, ctx: RunContext) -> None:
        """Unpack the image's filesystem into ``dest`` (for bare OCI bundles)."""
        client = self.client()
        cid = client.create_container(image, command=["true"], labels=ctx.labels())["Id"]
        try:
            data = b"".join(client.export(cid))
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                safetar.extract(tar, dest)
        finally:
            client.remove_container(cid, force=True)

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
                raise EngineError(f"docker: container exited with status {code}: "
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
