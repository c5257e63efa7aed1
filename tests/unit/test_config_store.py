from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from forge_desktop.config import load_config, parse_config
from forge_desktop.errors import ConfigError, StoreError
from forge_desktop.models import RunSpec
from forge_desktop.results import store
from forge_desktop.results.schema import SCHEMA_VERSION, validate
from forge_desktop.runtimes.command import expand


def test_defaults_without_a_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "absent.toml")
    assert cfg.image == "busybox:latest" and cfg.iterations == 10 and not cfg.command_runtimes


def test_user_runtime_parsed_as_argv() -> None:
    cfg = parse_config({"runtimes": {"forge": {"run": ["forge-runtime", "run", "{image}",
                                                       "{command}"]}}})
    (rt,) = cfg.command_runtimes
    assert expand(rt.run, RunSpec("img:1", ("sh", "-c", "echo hi; ls"))) == [
        "forge-runtime", "run", "img:1", "sh", "-c", "echo hi; ls"]


@pytest.mark.parametrize("data, needle", [
    ({"runtimes": {"x": {"run": "forge-runtime run"}}}, "list of strings"),
    ({"runtimes": {"x": {"run": []}}}, "list of strings"),
    ({"runtimes": {"docker": {"run": ["d"]}}}, "shadow"),
    ({"runtimes": {"Bad Name": {"run": ["d"]}}}, "must match"),
    ({"runtimes": {"x": {}}}, "needs run"),
    ({"benchmark": {"iterations": "ten"}}, "must be a number"),
    ({"benchmark": {"iterations": 0}}, "between"),
    ({"benchmark": {"image": 3}}, "image name"),
    ({"targets": {"startup_ms": "fast"}}, "must be a number"),
])
def test_bad_config_values_are_refused_clearly(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_config(data)


def test_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[runtimes.forge\nrun = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def _doc(run_id: str = "r1") -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "id": run_id, "kind": "startup",
            "created_at": "2026-01-01T00:00:00Z", "runtimes": []}


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = store.save(_doc(), tmp_path / "b")
    assert json.loads(path.read_text())["id"] == "r1"
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["r1.json"]
    assert oct((tmp_path / "b").stat().st_mode & 0o777) == "0o700"


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = store.save(_doc(), tmp_path)
    original = path.read_text()

    def broken_fsync(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StoreError, match="disk is full"):
        store.save({**_doc(), "kind": "memory"}, tmp_path)
    assert path.read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["r1.json"]


def test_unwritable_store(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="FORGE_HOME"):
        store.ensure_writable(blocker / "benchmarks")


@pytest.mark.parametrize("doc, needle", [
    ([], "JSON object"), ({"id": "x"}, "schema_version"),
    ({**_doc(), "schema_version": SCHEMA_VERSION + 1}, "newer"),
    ({**_doc(), "runtimes": "x"}, "runtimes"),
])
def test_validate_refuses_foreign_and_newer_documents(doc: object, needle: str) -> None:
    with pytest.raises(StoreError, match=needle):
        validate(doc)
