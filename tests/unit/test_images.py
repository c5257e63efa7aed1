"""The image benchmark against fake engines and a fake registry: what is timed, what is removed
(only the run's own images), and that every way out of a run cleans up."""

from __future__ import annotations

import itertools
import socket
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from forge_desktop.bench import images as im
from forge_desktop.bench.images import (
    ImageBench,
    ImageOptions,
    ImageRun,
    build_temp_tar,
    is_temp_ref,
    parse_registry,
    split_ref,
    sweep_dead_images,
    tag_owner_dead,
    temp_tag,
)
from forge_desktop.errors import EngineError, ForgeError, Interrupted, UsageError
from forge_desktop.image import host_busybox
from forge_desktop.runtimes.base import ImageFacts, new_run_context

from .fakes import FakeRuntime

USER_IMAGE = "forge-bench:busybox"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, value: float) -> None:
        self.now += value / 1000


class FakeRegistry:
    address = "registry.test:5000"

    def __init__(self) -> None:
        self.repo: dict[str, str] = {}  # tag -> image id
        self.deleted: list[str] = []

    def tags(self, repo: str) -> list[str]:
        return sorted(self.repo)

    def delete_tag(self, repo: str, tag: str) -> bool:
        self.deleted.append(tag)
        return self.repo.pop(tag, None) is not None

    def transfer_bytes(self, repo: str, tag: str) -> int | None:
        return 1234 if tag in self.repo else None


class FakeDriver:
    """An engine's image store in a dict; each operation advances the clock by its cost."""

    _ids = itertools.count(1)

    def __init__(self, name: str, clock: Clock, registry: FakeRegistry | None = None, *,
                 load_ms: float = 10.0, remove_ms: float = 1000.0,
                 on_transfer: Callable[[FakeDriver], None] | None = None,
                 fail_push: bool = False) -> None:
        self.name = name
        self.clock = clock
        self.registry = registry
        self.load_ms = load_ms
        self.remove_ms = remove_ms
        self.on_transfer = on_transfer
        self.fail_push = fail_push
        self.images: dict[str, list[str]] = {f"user-{name}": [USER_IMAGE]}
        self.content: dict[str, str] = {}  # id -> what it was built from
        self.pushes: list[str] = []
        self.later: list[tuple[list[str], str]] = []
        """Images the 'daemon' adds at a later list: an operation that finished after the
        client went away."""
        self.later_after = 0
        """How many list calls pass before ``later`` shows up."""

    def _find(self, ref: str) -> str | None:
        if ref in self.images:
            return ref
        return next((i for i, tags in self.images.items() if ref in tags), None)

    def _add(self, tags: list[str], content: str) -> str:
        for old in self.images.values():
            for t in tags:
                if t in old:
                    old.remove(t)
        image_id = next((i for i, c in self.content.items() if c == content
                         and i in self.images), None) or f"sha256:{next(self._ids):04d}"
        self.images.setdefault(image_id, [])
        self.images[image_id] += [t for t in tags if t not in self.images[image_id]]
        self.content[image_id] = content
        return image_id

    def import_tar(self, tar_path: Path, ref: str) -> None:
        self._add([ref], str(tar_path))

    def inspect_image(self, ref: str) -> ImageFacts | None:
        image_id = self._find(ref)
        return None if image_id is None else ImageFacts(image_id, tuple(self.images[image_id]))

    def list_images(self) -> list[ImageFacts]:
        if self.later_after:
            self.later_after -= 1
            return [ImageFacts(i, tuple(t)) for i, t in self.images.items()]
        for tags, content in self.later:
            self._add(tags, content)
        self.later.clear()
        return [ImageFacts(i, tuple(t)) for i, t in self.images.items()]

    def remove_image(self, ref: str, force: bool) -> None:
        self.clock.advance_ms(self.remove_ms)
        image_id = self._find(ref)
        if image_id is None:
            return
        if image_id == ref:
            assert force
            del self.images[image_id]
        else:
            self.images[image_id].remove(ref)
            if not self.images[image_id]:
                del self.images[image_id]

    def save_image(self, ref: str) -> bytes:
        image_id = self._find(ref)
        assert image_id is not None
        return f"{self.content[image_id]}|{ref}".encode()

    def load_image(self, data: bytes, timeout_s: float) -> None:
        content, ref = data.decode().split("|")
        self.clock.advance_ms(self.load_ms)
        if self.on_transfer:
            self.on_transfer(self)
        self._add([ref], content)

    def push_image(self, ref: str, dest: str, timeout_s: float, tls_verify: bool = True) -> None:
        if self.fail_push:
            raise EngineError(f"{self.name}: push refused")
        assert self.registry is not None
        image_id = self._find(ref)
        assert image_id is not None
        self.pushes.append(dest)
        self.registry.repo[dest.rsplit(":", 1)[1]] = self.content[image_id]

    def pull(self, ref: str, timeout_s: float, tls_verify: bool = True) -> None:
        assert self.registry is not None
        self.clock.advance_ms(self.load_ms)
        if self.on_transfer:
            self.on_transfer(self)
        self._add([ref], self.registry.repo[ref.rsplit(":", 1)[1]])

    def temp_images(self) -> list[str]:
        return [t for tags in self.images.values() for t in tags
                if split_ref(t)[0] == im.TEMP_REPO]


def make_bench(drivers: list[FakeDriver], clock: Clock, source: str = "load",
               registry: FakeRegistry | None = None, **kwargs: object) -> ImageBench:
    runs = [ImageRun(FakeRuntime(d.name), FakeRuntime(d.name).info(), driver=d, clock=clock)
            for d in drivers]
    return ImageBench(runs, new_run_context(), source, Path("/tmp/image.tar"),
                      registry, settle_s=0, **kwargs)  # type: ignore[arg-type]


def assert_clean(*drivers: FakeDriver) -> None:
    for d in drivers:
        d.list_images()  # lets 'later' images show up
        assert d.temp_images() == [], d.images
        assert d.inspect_image(USER_IMAGE) is not None
        assert d.inspect_image(f"user-{d.name}") is not None


# -- names and options ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["127.0.0.1:5000", "localhost:1", "registry.example.org:443",
                                   "[::1]:5000"])
def test_registry_addresses_accepted(value: str) -> None:
    assert parse_registry(value) == value


@pytest.mark.parametrize("value", ["nonsense", "127.0.0.1", ":5000", "host:0", "host:70000",
                                   "http://host:5000", "host:5000/path", "a b:5000", ""])
def test_registry_addresses_refused(value: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_registry(value)


def test_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(im.REGISTRY_ENV, raising=False)
    assert ImageOptions().registry_address() == im.DEFAULT_REGISTRY
    assert not ImageOptions().needs_registry()
    assert ImageOptions(source="pull").needs_registry()
    assert ImageOptions(registry="h:1").needs_registry()  # an explicit one must answer
    monkeypatch.setenv(im.REGISTRY_ENV, "reg.test:5001")
    assert ImageOptions().registry_address() == "reg.test:5001"
    assert ImageOptions(registry="h:1").registry_address() == "h:1"
    monkeypatch.setenv(im.REGISTRY_ENV, "junk")
    with pytest.raises(UsageError, match=im.REGISTRY_ENV):
        ImageOptions().validate()
    for bad, needle in ((ImageOptions(source="ftp"), "--source"),
                        (ImageOptions(iterations=0), "between 1 and 1000"),
                        (ImageOptions(iterations=1001), "between 1 and 1000"),
                        (ImageOptions(warmup=-1), "--warmup")):
        with pytest.raises(UsageError, match=needle):
            bad.validate()


def test_refs_and_tags() -> None:
    ctx = new_run_context()
    tag = temp_tag(ctx)
    assert ctx.run_id.rsplit("-", 1)[1] in tag and len(tag) <= 128
    for ref in (f"forge-bench-tmp:{tag}", f"localhost/forge-bench-tmp:{tag}",
                f"127.0.0.1:5000/forge-bench-tmp:{tag}"):
        assert is_temp_ref(ref, tag), ref
    assert not is_temp_ref(USER_IMAGE, tag)
    assert not is_temp_ref(f"forge-bench-tmp:{tag}x", tag)
    assert not is_temp_ref("127.0.0.1:5000/forge-bench-tmp", tag)
    assert split_ref("127.0.0.1:5000/forge-bench-tmp") == ("forge-bench-tmp", "")
    assert not tag_owner_dead(tag)  # this process is alive
    dead = f"abc123-999999-1-{im.host_hash()}"
    assert tag_owner_dead(dead)
    assert not tag_owner_dead("abc123-999999-1-000000")  # another host: not ours to judge
    assert not tag_owner_dead("latest") and not tag_owner_dead("busybox")


def test_temp_tar_is_the_benchmark_image_plus_the_run_id(tmp_path: Path) -> None:
    # scripts/provision.sh installs busybox-static: without it the fallback image cannot be built
    assert host_busybox() is not None, "no static busybox: run scripts/provision.sh test"
    a = build_temp_tar(tmp_path / "a.tar", "run-a")
    b = build_temp_tar(tmp_path / "b.tar", "run-b")
    with tarfile.open(a) as tar:
        names = tar.getnames()
        member = tar.extractfile("forge-run")
        assert member is not None and member.read() == b"run-a\n"
    assert {"bin/busybox", "bin/sh", "tmp", "forge-run"} <= set(names)
    assert a.read_bytes() != b.read_bytes()
    assert build_temp_tar(tmp_path / "a2.tar", "run-a").read_bytes() == a.read_bytes()


# -- measuring ------------------------------------------------------------------------------

def test_load_times_only_the_load_and_leaves_nothing() -> None:
    clock = Clock()
    d, p = FakeDriver("docker", clock, load_ms=10), FakeDriver("podman", clock, load_ms=20)
    seen: list[tuple[str, int, int, bool]] = []
    bench = make_bench([d, p], clock, progress=lambda *a: seen.append(a))
    runs = bench.run(3, warmup=1)
    assert [s.total_ms for s in runs[0].samples] == pytest.approx([10, 10, 10])
    assert [s.total_ms for s in runs[1].samples] == pytest.approx([20, 20, 20])
    assert runs[0].samples[0].phases_ms == pytest.approx({"load": 10})
    assert all(not r.errors for r in runs) and runs[0].transfer_bytes
    assert seen[0] == ("docker", 1, 1, True) and seen[-1] == ("podman", 3, 3, False)
    assert_clean(d, p)


def test_every_iteration_starts_without_the_image() -> None:
    clock = Clock()
    present: list[bool] = []
    d = FakeDriver("docker", clock,
                   on_transfer=lambda drv: present.append(bool(drv.temp_images())))
    make_bench([d], clock).run(4)
    assert present == [False] * 4


def test_pull_pushes_once_and_every_engine_pulls_those_bytes() -> None:
    clock, reg = Clock(), FakeRegistry()
    d, p = FakeDriver("docker", clock, reg), FakeDriver("podman", clock, reg, load_ms=30)
    bench = make_bench([d, p], clock, "pull", reg)
    runs = bench.run(2)
    assert bench.pushed_by == "docker" and len(d.pushes) == 1 and p.pushes == []
    assert [s.phases_ms for s in runs[1].samples] == [{"pull": pytest.approx(30)}] * 2
    assert runs[1].transfer_bytes == 1234
    assert reg.repo == {} and reg.deleted == [bench.tag]
    assert_clean(d, p)


def test_push_falls_back_to_the_next_engine() -> None:
    clock, reg = Clock(), FakeRegistry()
    d = FakeDriver("docker", clock, reg, fail_push=True)
    p = FakeDriver("podman", clock, reg)
    bench = make_bench([d, p], clock, "pull", reg)
    runs = bench.run(2)
    assert bench.pushed_by == "podman" and "push refused" in runs[0].errors[0]
    assert len(runs[0].samples) == 2 and len(runs[1].samples) == 2
    assert_clean(d, p)


def test_an_image_someone_else_tagged_is_never_removed() -> None:
    clock = Clock()

    def user_tags_it(drv: FakeDriver) -> None:
        image_id = next(i for i, t in drv.images.items() if any(
            split_ref(x)[0] == im.TEMP_REPO for x in t))
        drv.images[image_id].append("mine:keep")

    d = FakeDriver("docker", clock)
    bench = make_bench([d], clock)
    bench.prepare()
    user_tags_it(d)
    runs = bench.run(2)
    assert runs[0].samples == [] and "also tagged mine:keep" in runs[0].errors[0]
    facts = d.inspect_image("mine:keep")
    assert facts is not None and facts.tags == ("mine:keep",)  # only our tag went
    assert_clean(d)


def test_interrupt_during_a_load_still_cleans_up_what_the_engine_finished_later() -> None:
    clock = Clock()
    calls = itertools.count()

    def interrupted(drv: FakeDriver) -> None:
        if next(calls) == 1:
            drv.later.append(([f"forge-bench-tmp:{bench.tag}"], "late"))
            drv.later_after = 1  # the first cleanup pass misses it; the settle pass sees it
            raise KeyboardInterrupt

    d = FakeDriver("docker", clock, on_transfer=interrupted)
    p = FakeDriver("podman", clock)
    bench = make_bench([d, p], clock)
    with pytest.raises(KeyboardInterrupt):
        bench.run(5)
    assert_clean(d, p)


def test_cancel_stops_before_the_next_iteration_and_cleans_up() -> None:
    clock = Clock()
    cancel = threading.Event()
    d = FakeDriver("docker", clock, on_transfer=lambda _d: cancel.set())
    with pytest.raises(Interrupted):
        make_bench([d], clock, cancel=cancel).run(5)
    assert_clean(d)


def test_a_failing_engine_is_given_up_after_three_errors() -> None:
    clock = Clock()

    def boom(_d: FakeDriver) -> None:
        raise EngineError("docker: load failed: no space left on device")

    d = FakeDriver("docker", clock, on_transfer=boom)
    p = FakeDriver("podman", clock)
    runs = make_bench([d, p], clock).run(10)
    assert len(runs[0].errors) == 3 and runs[0].stopped and len(runs[1].samples) == 10
    assert_clean(d, p)


def test_cleanup_never_raises() -> None:
    clock = Clock()
    d = FakeDriver("docker", clock)
    bench = make_bench([d], clock, log=lambda m: logged.append(m))
    logged: list[str] = []

    def broken() -> list[ImageFacts]:
        raise ForgeError("docker: image list failed: daemon gone")

    bench.prepare()
    d.list_images = broken  # type: ignore[method-assign]
    bench.cleanup()
    assert any("daemon gone" in m for m in logged)


def test_sweep_removes_only_dead_runs_images() -> None:
    clock, reg = Clock(), FakeRegistry()
    d = FakeDriver("docker", clock)
    host = im.host_hash()
    live = temp_tag(new_run_context())
    d.images.update({
        "dead": [f"forge-bench-tmp:aa-999999-1-{host}",
                 f"127.0.0.1:5000/forge-bench-tmp:aa-999999-1-{host}"],
        "dead-but-tagged": [f"forge-bench-tmp:bb-999999-1-{host}", "user:kept"],
        "live": [f"forge-bench-tmp:{live}"],
        "other-host": ["forge-bench-tmp:cc-999999-1-000000"],
        "odd": ["forge-bench-tmp:latest"],
    })
    reg.repo = {f"dd-999999-1-{host}": "x", live: "y", "ee-999999-1-000000": "z"}
    removed = sweep_dead_images([d], reg)  # type: ignore[arg-type]
    assert removed == 3
    assert "dead" not in d.images and d.images["dead-but-tagged"] == ["user:kept"]
    assert {"live", "other-host", "odd"} <= set(d.images)
    assert set(reg.repo) == {live, "ee-999999-1-000000"}


def test_host_hash_follows_the_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    before = im.host_hash()
    monkeypatch.setattr(socket, "gethostname", lambda: "elsewhere")
    assert im.host_hash() != before
