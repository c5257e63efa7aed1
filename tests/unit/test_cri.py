"""The cri adapter's pieces that need no running containerd: image names as the CRI plugin
stores them, the OCI archives it imports, the private containerd's config, the error mapping."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import tarfile
from pathlib import Path

import grpc
import pytest

from forge_desktop.errors import EngineError, EngineTimeout, RuntimeUnavailable
from forge_desktop.runtimes.cri import (
    PAUSE_IMAGE,
    CriRuntime,
    PrivateContainerd,
    _Exported,
    _goarch,
    normalize_ref,
    write_oci_archive,
)


@pytest.mark.parametrize(("given", "stored"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("forge-bench:busybox", "docker.io/library/forge-bench:busybox"),
    ("user/app:1", "docker.io/user/app:1"),
    ("localhost/app", "localhost/app:latest"),
    ("127.0.0.1:5000/app:2", "127.0.0.1:5000/app:2"),
    ("forge.local/forge-pause:latest", "forge.local/forge-pause:latest"),
    ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
])
def test_normalize_ref(given: str, stored: str) -> None:
    assert normalize_ref(given) == stored


def test_oci_archive_round_trip(tmp_path: Path) -> None:
    """What write_oci_archive writes is what _Exported (reading `ctr images export`) reads:
    one manifest for this host, its config and its layers' bytes."""
    layer_bytes = b"layer content" * 100
    digest = f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
             "size": len(layer_bytes)}
    config = {"architecture": _goarch(), "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [digest]}}
    archive = tmp_path / "a.tar"
    write_oci_archive(archive, PAUSE_IMAGE, config, [(layer, lambda: io.BytesIO(layer_bytes))])
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        (entry,) = index["manifests"]
        assert entry["annotations"]["io.containerd.image.name"] == PAUSE_IMAGE
        exported = _Exported(tar)
        assert exported.config == config
        assert exported.layers == [layer]
        with exported.opener(layer)() as blob:
            assert blob.read() == layer_bytes


def test_private_config_is_forge_own(forge_home: Path) -> None:
    """From `containerd config default`: CRI enabled, forge's root, state, socket and pause
    image, the pause process's OOM score not lowered; nothing outside FORGE_HOME and its
    /run/forge-cri directory (the user's /etc/containerd/config.toml is never written)."""
    # provisioning installs containerd (it comes with docker.io): missing, this fails, not skips
    assert shutil.which("containerd"), "no containerd binary: run scripts/provision.sh test"
    etc = Path("/etc/containerd/config.toml")
    before = etc.read_bytes() if etc.exists() else None
    private = PrivateContainerd(30.0)
    private.write_config()
    text = private.config.read_text()
    assert private.config.is_relative_to(forge_home.resolve())
    lines = [ln.strip() for ln in text.splitlines()]
    assert "disabled_plugins = []" in lines
    assert f'root = "{private.root}"' in lines
    assert f'state = "{private.state}"' in lines
    assert f'address = "{private.socket}"' in lines
    assert f'sandbox_image = "{PAUSE_IMAGE}"' in lines
    assert "restrict_oom_score_adj = true" in lines
    assert len(str(private.socket)) < 108, "a unix socket path must fit in sun_path"
    assert (etc.read_bytes() if etc.exists() else None) == before


def test_unstarted_task_bundles_are_removed(forge_home: Path, tmp_path: Path) -> None:
    """What a containerd killed in a StartContainer leaves (a bundle with ``address``, no
    ``runtime``) is removed with its work directory once no shim answers at that address; a
    created task's bundle, or one whose shim still listens, is left to containerd. Bundles
    laid out as containerd 1.6 writes them, in a state directory of the test's own."""
    private = PrivateContainerd(30.0)
    private.state = tmp_path / "state"
    stale = tmp_path / "stale.sock"  # a SIGKILLed shim's socket: the file stays, nobody listens
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))
    works = {}

    def bundle(name: str, address: Path, created: bool) -> None:
        path = private.tasks / name
        (path / "rootfs").mkdir(parents=True)
        (path / "config.json").write_text("{}")
        (path / "address").write_text(f"unix://{address}")
        works[name] = private.root / "io.containerd.runtime.v2.task" / "k8s.io" / name
        works[name].mkdir(parents=True)
        (path / "work").symlink_to(works[name])
        if created:
            (path / "runtime").write_text("runc")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as shim:
        shim.bind(str(tmp_path / "live.sock"))
        shim.listen()
        bundle("unstarted-no-socket", tmp_path / "gone.sock", created=False)
        bundle("unstarted-stale-socket", stale, created=False)
        bundle("unstarted-shim-alive", tmp_path / "live.sock", created=False)
        bundle("created", stale, created=True)
        private.remove_unstarted_tasks()
    assert sorted(p.name for p in private.tasks.iterdir()) == ["created", "unstarted-shim-alive"]
    assert {n for n, w in works.items() if w.exists()} == {"created", "unstarted-shim-alive"}


class _Rpc(grpc.RpcError):  # type: ignore[misc]  # grpc ships no type hints
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_error_mapping() -> None:
    rt = CriRuntime(timeout_s=5)
    err = rt.engine_error("CreateContainer", _Rpc(grpc.StatusCode.NOT_FOUND, "no image\nmore"))
    assert type(err) is EngineError and str(err) == "cri: CreateContainer failed: no image"
    assert not rt.hung
    gone = rt.engine_error("StartContainer", _Rpc(grpc.StatusCode.UNAVAILABLE, "reset"))
    assert isinstance(gone, RuntimeUnavailable) and "stopped answering" in str(gone)
    assert not rt.hung
    late = rt.engine_error("RunPodSandbox", _Rpc(grpc.StatusCode.DEADLINE_EXCEEDED, "late"))
    assert isinstance(late, EngineTimeout) and "did not answer within 5 s" in str(late)
    assert rt.hung, "a deadline marks the runtime hung: no later call waits again"
    with pytest.raises(EngineTimeout, match="not asked again"):
        rt.has_image("busybox")
    assert rt.cleanup() == 0


def test_cli_starts_without_grpc() -> None:
    """grpc and protobuf are imported when a cri call is made, not when forge starts."""
    import subprocess
    import sys

    code = ("import sys; from forge_desktop.cli import main; sys.argv = ['forge', 'benchmark', "
            "'startup', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('grpc', 'google.protobuf') if m in sys.modules], "
            "file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
