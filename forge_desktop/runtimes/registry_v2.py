"""The few registry v2 HTTP API calls forge needs (probe, manifest, tags, delete, sizes), for
the image benchmark's pull mode. Not to be confused with runtimes/registry.py, which maps
runtime names to adapters."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from forge_desktop.errors import EngineError, RegistryUnavailable
from forge_desktop.runtimes.common import first_line, is_timeout

if TYPE_CHECKING:
    import requests

PROBE_TIMEOUT_S = 3.0
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
))
"""Podman pushes OCI manifests, docker pushes docker v2 ones: a registry answers 404 for a
manifest whose type the Accept header leaves out."""


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
