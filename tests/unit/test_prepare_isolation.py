"""A runtime that cannot be prepared is left out of the run with its reason; the others are
prepared and measured. Fakes at the declared adapter seam (tests/unit/fakes.py); the real
engines' version of this is tests/integration/test_startup.py::test_unwritable_bundle_*."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forge_desktop.bench.runner import Runner
from forge_desktop.bench.startup import runtime_entry
from forge_desktop.config import FALLBACK_IMAGE
from forge_desktop.errors import EngineError, ImageError
from forge_desktop.image import prepare_each, prepare_image
from forge_desktop.models import RunContext, RunSpec
from forge_desktop.runtimes.base import new_run_context
from forge_desktop.runtimes.oci import rootfs_ready

from .fakes import FakeRuntime

# The message Debian 12's Python 3.11.2 gave, which once aborted every runtime of the run.
OLD_BUG = TypeError("TarFile.extractall() got an unexpected keyword argument 'filter'")


class BrokenPrepare(FakeRuntime):
    def prepare(self, spec: RunSpec, ctx: RunContext) -> None:
        raise OLD_BUG


class FakeEngine(FakeRuntime):
    """An engine for image preparation: holds images, pulls (or not), imports, exports."""

    def __init__(self, name: str, images: set[str] | None = None, pull_ok: bool = False,
                 import_error: Exception | None = None,
                 export_error: Exception | None = None) -> None:
        super().__init__(name)
        self.images = set(images or ())
        self.pull_ok, self.import_error, self.export_error = pull_ok, import_error, export_error

    def has_image(self, image: str) -> bool:
        return image in self.images

    def image_layers(self, image: str) -> list[str]:
        return [f"sha256:{image}"]

    def pull(self, image: str, timeout_s: float) -> None:
        if not self.pull_ok:
            raise ImageError(f"{self.name} could not pull {image}: no registry")
        self.images.add(image)

    def import_tar(self, tar_path: Path, image: str) -> None:
        if self.import_error is not None:
            raise self.import_error
        self.images.add(image)

    def export_rootfs(self, image: str, dest: Path, ctx: RunContext) -> None:
        if self.export_error is not None:
            raise self.export_error
        (dest / "bin").mkdir()
        (dest / "bin" / "sh").write_text("")


class FakeOci(FakeRuntime):
    kind = "oci"


def test_a_runtime_whose_prepare_fails_in_any_way_is_left_out_and_others_run() -> None:
    bad, good = BrokenPrepare("bad"), FakeRuntime("good")
    runs = Runner([bad, good], RunSpec(image="img"), new_run_context()).run(
        5, 1, {r.name: r.info() for r in (bad, good)})
    assert bad.calls == [] and runs[0].unavailable == f"internal error: TypeError: {OLD_BUG}"
    assert len(runs[1].samples) == 5 and not runs[1].errors
    entry = runtime_entry(runs[0], "api")
    assert entry["unavailable"] == runs[0].unavailable and entry["stats"] is None
    assert entry["errors"] == [f"not prepared, left out of this run: {runs[0].unavailable}"]
    assert "unavailable" not in runtime_entry(runs[1], "api")
    assert bad.closed == good.closed == 1  # both still cleaned up and closed


def test_runner_leaves_out_what_image_preparation_could_not_prepare() -> None:
    a, b = FakeRuntime("a"), FakeRuntime("b")
    runs = Runner([a, b], RunSpec(image="img"), new_run_context()).run(
        3, 0, {r.name: r.info() for r in (a, b)}, unprepared={"a": "no bundle"})
    assert a.calls == [] and runs[0].unavailable == "no bundle" and runs[0].stopped
    assert len(runs[1].samples) == 3


def test_rootfs_unpack_failure_costs_the_oci_runtime_only(forge_home: Path) -> None:
    engine = FakeEngine("eng", images={FALLBACK_IMAGE}, export_error=OLD_BUG)
    oci = FakeOci("ocirt")
    ref, failed = prepare_each([engine, oci], new_run_context())  # type: ignore[list-item]
    assert ref == FALLBACK_IMAGE
    assert failed == {"ocirt": f"internal error: TypeError: {OLD_BUG}"}
    assert not rootfs_ready(FALLBACK_IMAGE)
    assert list((forge_home / "bundles").rglob("*rootfs*")) == []  # the half tree is gone
    with pytest.raises(ImageError, match="ocirt: internal error: TypeError"):
        prepare_image([engine, oci], new_run_context())  # type: ignore[list-item]


def test_an_unwritable_bundle_dir_costs_the_oci_runtime_only(forge_home: Path) -> None:
    forge_home.mkdir()
    (forge_home / "bundles").write_text("not a directory")
    engine = FakeEngine("eng", images={FALLBACK_IMAGE})
    ref, failed = prepare_each([engine, FakeOci("ocirt")],  # type: ignore[list-item]
                               new_run_context())
    assert ref == FALLBACK_IMAGE and list(failed) == ["ocirt"]
    assert failed["ocirt"].startswith(f"cannot use {forge_home / 'bundles'}")


def test_one_engine_failing_to_import_does_not_stop_the_other(forge_home: Path) -> None:
    """No registry: the stand-in image is built from the host's busybox and imported into
    each engine; one import fails, the other engine and the OCI runtime are prepared."""
    bad = FakeEngine("bad", import_error=EngineError("bad: import refused"))
    good = FakeEngine("good")
    logs: list[str] = []
    ref, failed = prepare_each([bad, good, FakeOci("ocirt")],  # type: ignore[list-item]
                               new_run_context(), log=logs.append)
    assert ref == FALLBACK_IMAGE and failed == {"bad": "bad: import refused"}
    assert FALLBACK_IMAGE in good.images and rootfs_ready(FALLBACK_IMAGE)
    assert any("importing" in m and "good" in m for m in logs)


def test_a_users_image_pulled_where_it_can_be(forge_home: Path) -> None:
    bad, good = FakeEngine("bad"), FakeEngine("good", pull_ok=True)
    ref, failed = prepare_each([bad, good], new_run_context(),
                               "alpine:3")
    assert ref == "alpine:3" and list(failed) == ["bad"] and "could not pull" in failed["bad"]


def test_nothing_prepared_is_one_error_naming_each_runtime(forge_home: Path) -> None:
    engines: list[Any] = [FakeEngine("e1"), FakeEngine("e2")]
    with pytest.raises(ImageError) as err:
        prepare_each(engines, new_run_context(), "alpine:3")
    assert "could not be prepared on any runtime" in str(err.value)
    assert "e1: e1 could not pull" in str(err.value) and "e2:" in str(err.value)
