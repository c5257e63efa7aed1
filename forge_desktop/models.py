"""Immutable value objects. Units live in the names (``total_ms``, ``rss_bytes``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RuntimeKind = Literal["engine", "oci", "command"]
NetworkMode = Literal["none", "host", "default"]
Via = Literal["api", "cli"]

LABEL_RUN = "io.forge.benchmark"
"""Label carried by every container forge creates; its value is the run id."""
LABEL_OWNER = "io.forge.owner"
"""``host/pid/process-start-time`` of the forge process that owns the container."""
OCI_ID_PREFIX = "forge-"
"""Bare OCI runtimes have no labels: container ids are ``forge-<pid>-<start>-<run>-<n>``."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``forge runtimes`` reports for one runtime."""

    name: str
    kind: RuntimeKind
    available: bool
    version: str | None = None
    endpoint: str | None = None
    reason: str | None = None
    storage_driver: str | None = None
    cgroup_limits: bool | None = None
    """Whether the run's memory and pids limits apply to its containers (cgroups); False for
    a runtime that runs without them here (crun in a cgroup2 namespace, rootless runc on
    cgroup v1); None where forge cannot tell (command runtimes)."""
    note: str | None = None
    """How an available runtime runs when it is not the usual way (e.g. "cgroup2 namespace,
    no cgroup limits")."""
    network: str | None = None
    """The network its containers get whatever the run asks for (cri pods: "host"); None when
    it follows the run's --network."""
    transport: dict[str, Any] | None = None
    """Transport mode (``docker@CONTEXT``): what one call over ssh costs, measured before the
    run (runtimes/transport.py); None for an engine reached on this machine."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "available": self.available,
            "version": self.version,
            "endpoint": self.endpoint,
            "reason": self.reason,
            "storage_driver": self.storage_driver,
            "cgroup_limits": self.cgroup_limits,
            "note": self.note,
            "network": self.network,
            "transport": self.transport,
        }


@dataclass(frozen=True)
class RunContext:
    """Identity of one benchmark run, stamped onto everything it creates."""

    run_id: str
    owner: str

    def labels(self) -> dict[str, str]:
        return {LABEL_RUN: self.run_id, LABEL_OWNER: self.owner}


@dataclass(frozen=True)
class RunSpec:
    """One container start to measure."""

    image: str
    command: tuple[str, ...] = ("true",)
    network: NetworkMode = "none"
    via: Via = "api"
    memory_limit_bytes: int = 64 * 1024 * 1024
    pids_limit: int = 64


@dataclass(frozen=True)
class Sample:
    """One measured iteration: wall time of the whole lifecycle and its phases."""

    total_ms: float
    phases_ms: dict[str, float] = field(default_factory=dict)
    to_exec_ms: float | None = None
    """Engines only: from the create request to the moment the container's process started
    (the engine's StartedAt), i.e. what the workload inside waits for."""

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"total_ms": round(self.total_ms, 4),
                               "phases_ms": {k: round(v, 4) for k, v in self.phases_ms.items()}}
        if self.to_exec_ms is not None:
            doc["to_exec_ms"] = self.to_exec_ms
        return doc
