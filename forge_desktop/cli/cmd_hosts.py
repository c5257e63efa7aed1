"""``forge hosts``, ``forge hosts check NAME`` and ``forge benchmark ... --host NAME``.

The hosts are config.toml's ``[hosts.NAME]`` and the ``ssh://`` docker contexts and podman
connections (forge_desktop/hosts.py); runs on them and the fleet document are
forge_desktop/fleet.py. Cheap to import: typer only at the top.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from forge_desktop.actions import Action
    from forge_desktop.fleet import HostRun

hosts_app = typer.Typer(help="Remote hosts benchmarks can run on (over ssh).",
                        invoke_without_command=True)


def _err(line: str) -> None:
    from forge_desktop.results.index import printable

    sys.stderr.write(printable(line) + "\n")


@hosts_app.callback()
def hosts_list(ctx: typer.Context,
               as_json: Annotated[bool, typer.Option("--json", help="JSON list on stdout.")]
               = False) -> None:
    """List the hosts (config.toml, docker contexts, podman connections), whether each is
    reachable over ssh and the version of forge there."""
    if ctx.invoked_subcommand is not None:
        return
    from concurrent.futures import ThreadPoolExecutor

    from forge_desktop.config import load_config
    from forge_desktop.hosts import all_hosts, probe

    config = load_config()
    hosts, notes = all_hosts(config.hosts)
    for note in notes:
        _err(f"note: {note}")
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(hosts)))) as pool:
        reach = list(pool.map(lambda h: probe(h, config.timeout_s), hosts.values()))
    if as_json:
        sys.stdout.write(json.dumps([r.to_json() for r in reach], indent=2) + "\n")
        return
    if not reach:
        print("no hosts: add [hosts.NAME] with url = \"ssh://user@host\" to "
              f"{config.source or 'config.toml'}, or a docker context / podman connection "
              "with an ssh:// endpoint")
        return
    from rich.console import Console
    from rich.table import Table

    from forge_desktop.cli.results_format import escape

    table = Table(title="Hosts", title_justify="left")
    for col in ("Name", "URL", "Source", "Reachable", "Forge", "Reason"):
        table.add_column(col)
    for r in reach:
        table.add_row(escape(r.host.name), escape(r.host.url), escape(r.host.source),
                      "yes" if r.reachable else "[red]no[/red]", escape(r.forge_version or "-"),
                      escape(r.reason or ""))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@hosts_app.command("check")
def hosts_check(name: Annotated[str, typer.Argument(metavar="NAME", help="A host name.")],
                as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")]
                = False) -> None:
    """What is missing on a host (ssh login, forge, engines, the benchmark image) and how to
    fix it; exit 0 only when nothing is."""
    import subprocess

    from forge_desktop.config import load_config
    from forge_desktop.errors import ForgeError
    from forge_desktop.hosts import all_hosts, probe, run_remote, select

    config = load_config()
    hosts, _ = all_hosts(config.hosts)
    host = select([name], hosts)[0]
    checks: list[dict[str, str]] = []
    reach = probe(host, config.timeout_s)
    if not reach.reachable:
        checks.append({"name": "forge", "status": "fail", "detail": reach.reason or "",
                       "fix": ""})
    else:
        checks.append({"name": "forge", "status": "ok",
                       "detail": f"forge {reach.forge_version} answers over ssh", "fix": ""})
        try:  # the remote doctor checks engines, sockets, image, OCI runtimes there
            proc = run_remote(host, [host.forge, "doctor", "--json"], 4 * config.timeout_s)
            found = json.loads(proc.stdout) if proc.stdout.strip() else None
        except subprocess.TimeoutExpired:
            raise ForgeError(f"host {host.name}: forge doctor gave no answer within "
                             f"{4 * config.timeout_s:g} s") from None
        except ValueError:
            found = None
        if not isinstance(found, list):
            raise ForgeError(f"host {host.name}: forge doctor --json printed no check list "
                             f"(exit {proc.returncode})")
        for c in found:
            # a benchmark host needs no desktop: its tray and notifications do not count
            if isinstance(c, dict) and c.get("name") not in ("tray host", "notifications"):
                checks.append({k: str(c.get(k, "")) for k in ("name", "status", "detail",
                                                               "fix")})
    if as_json:
        sys.stdout.write(json.dumps({"host": host.name, "checks": checks}, indent=2) + "\n")
    else:
        from forge_desktop.results.index import printable as one_line

        for c in checks:
            fix = f" (fix: {c['fix']})" if c["fix"] and c["status"] != "ok" else ""
            print(one_line(f"{c['status']:<4} {c['name']}: {c['detail']}{fix}"))
    if any(c["status"] == "fail" for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """``forge hosts`` and the runner behind every benchmark command's ``--host``."""
    from forge_desktop.cli.params import ON_HOSTS

    app.add_typer(hosts_app, name="hosts")
    ON_HOSTS[:] = [benchmark_on_hosts]


# --- forge benchmark KIND ... --host NAME ----------------------------------------------------

def _own_argv(own: Mapping[str, Any]) -> list[str]:
    """The command's own options as the user gave them (not their defaults), for the remote
    forge: read from click's view of the command, so a new option needs no change here."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - typer before it vendored click
        from click.globals import get_current_context  # type: ignore[no-redef]

    argv: list[str] = []
    for param in get_current_context().command.params:
        name = param.name or ""
        if name not in own or name in ("as_json",) or own[name] == param.default:
            continue
        value, flag = own[name], param.opts[-1] if param.opts else f"--{name}"
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif isinstance(value, list | tuple):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return argv


def benchmark_on_hosts(action: Action, given: dict[str, Any], own: dict[str, Any], *,
                       host: list[str], baseline_host: str | None, serial: bool) -> None:
    """Run ``action`` with forge on each host, keep each result here with ``host``, and with
    two or more hosts save and show the fleet document."""
    from forge_desktop.config import load_config
    from forge_desktop.errors import UsageError
    from forge_desktop.fleet import fleet_document, run_on_hosts
    from forge_desktop.hosts import all_hosts, check_name, select
    from forge_desktop.results import store

    config = load_config()
    configured = {h.name: h for h in config.hosts}
    # docker and podman are asked for their endpoints only when config.toml does not name all
    discover = "all" in host or any(n not in configured for n in host)
    hosts = select(host, all_hosts(config.hosts, discover)[0])
    if baseline_host is not None:
        check_name(baseline_host, "--baseline-host")
        if baseline_host not in {h.name for h in hosts}:
            raise UsageError(f"--baseline-host {baseline_host} is not one of the --host hosts "
                             f"({', '.join(h.name for h in hosts)})")
    resolved = action.resolve(given, config, cli=True)
    argv = [*action.argv(resolved), *_own_argv(own), "--json"]
    save = not own.get("no_save", False)
    if save:
        store.ensure_writable()
    runs = run_on_hosts(hosts, action.id, argv,
                        timeout_s=config.timeout_s, serial=serial, save=save, log=_err)
    as_json = bool(own.get("as_json"))
    if len(hosts) == 1:
        _show_one(runs[0], as_json)
    else:
        doc = fleet_document(runs, action.id, {**_jsonable(resolved), "serial": serial},
                             baseline_host)
        path = store.save(doc) if save and any(r.doc for r in runs) else None
        _show_fleet(doc, path, as_json)
    for r in runs:
        if r.reason:
            _err(f"forge: error: {r.reason}")
    if any(r.reason for r in runs):
        raise typer.Exit(1)
    if any(not t.get("met", True) for r in runs if r.doc
           for t in r.doc.get("targets", []) if isinstance(t, dict)):
        raise typer.Exit(3)


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _show_one(run: HostRun, as_json: bool) -> None:
    if run.doc is None:
        return
    if as_json:
        sys.stdout.write(json.dumps(run.doc, indent=2) + "\n")
        return
    from rich.console import Console, Group

    from forge_desktop.cli.results_format import printable_doc, show_renderables

    out = Console(width=None if sys.stdout.isatty() else 120)
    out.print(Group(*show_renderables(printable_doc(run.doc))))
    if run.path:
        out.print(f"[dim]saved {run.path}[/dim]", highlight=False)


def _show_fleet(doc: dict[str, Any], path: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from forge_desktop.cli.results_format import fleet_lines
    from forge_desktop.results.index import printable

    for line in fleet_lines(doc):
        print(printable(line))
    if path:
        print(f"saved {path}")
