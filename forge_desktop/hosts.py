"""Remote hosts forge runs benchmarks on, over the system OpenSSH client (issue 14).

A host is ``[hosts.NAME]`` in config.toml (``url = "ssh://user@host:port"``, optional
``forge`` and ``ssh_options``) or an ``ssh://`` endpoint of a docker context or a podman
connection. Everything here is refused unless it is plainly a name, an address or an allowed
ssh option: a host comes from a file anyone may have edited, and its values end up on an ssh
command line and, quoted, in a remote shell. Host keys are always verified
(``StrictHostKeyChecking=yes``, ``BatchMode=yes``: an unknown key or a password prompt fails
instead of asking). A leaf: imports only errors.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from forge_desktop.errors import ConfigError, UsageError

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""A host name: what ``--host`` takes and a result's ``host`` says (``all`` is reserved)."""
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")
_URL_RE = re.compile(r"ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]/]*\]|[^:/@]+)"
                     r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[^?#]*)?")
_VALUE_RE = re.compile(r"[A-Za-z0-9._/~@:+=,-]{1,255}")
"""An ssh option's value: a path, a host, a number; no spaces, quotes or shell syntax."""
_FORGE_RE = re.compile(r"~?[A-Za-z0-9._/+-]{1,255}")
"""The forge command on a host: a name or a path (``~/`` allowed), nothing a shell reads."""
SSH_OPTIONS = frozenset({
    "IdentityFile", "IdentitiesOnly", "IdentityAgent", "CertificateFile", "ProxyJump",
    "UserKnownHostsFile", "GlobalKnownHostsFile", "HostKeyAlias", "ConnectTimeout",
    "ServerAliveInterval", "ServerAliveCountMax", "Compression", "Ciphers", "MACs",
    "KexAlgorithms", "HostKeyAlgorithms", "PubkeyAcceptedAlgorithms", "LogLevel",
    "AddressFamily", "Port", "User", "ControlMaster", "ControlPath", "ControlPersist",
})
"""The ``-o`` keys a host may set. Left out on purpose: StrictHostKeyChecking (keys are always
verified), ProxyCommand/LocalCommand/KnownHostsCommand/RemoteCommand (they run commands),
PasswordAuthentication (no passwords in config), SendEnv/SetEnv."""
_FLAGS_WITH_VALUE = {"-i", "-J", "-p", "-l"}
"""Not -F: another ssh config file could hold a ProxyCommand (the user's own ~/.ssh/config
applies anyway)."""
_FLAGS_ALONE = {"-4", "-6", "-C", "-q", "-v"}


@dataclass(frozen=True)
class Host:
    name: str
    url: str
    hostname: str
    user: str | None = None
    port: int | None = None
    forge: str = "forge"
    ssh_options: tuple[str, ...] = ()
    source: str = "config.toml"
    """Where it came from: ``config.toml``, ``docker context NAME``, ``podman connection
    NAME``."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "source": self.source, "forge": self.forge,
                "ssh_options": list(self.ssh_options)}


def _printable(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


def check_name(name: Any, where: str = "host name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name == "all":
        raise UsageError(f"{where} {_printable(str(name))[:60]!r} is not allowed: use 1-32 "
                         "lower-case letters, digits, '-' or '_', starting with a letter or "
                         "digit ('all' is reserved)")
    return name


def parse_url(url: Any, where: str) -> tuple[str | None, str, int | None]:
    """``ssh://[user@]host[:port][/path]`` -> (user, host, port); the path (a docker or podman
    socket) is ignored. Anything else, or shell syntax anywhere, is a ConfigError."""
    if not isinstance(url, str) or not (m := _URL_RE.fullmatch(url)):
        raise ConfigError(f"{where}: url {_printable(str(url))[:80]!r} is not "
                          "ssh://[user@]host[:port]")
    user, host, port_text, path = m.group("user"), m.group("host"), m.group("port"), \
        m.group("path")
    if user is not None and not _USER_RE.fullmatch(user):
        raise ConfigError(f"{where}: user {_printable(user)[:40]!r} in the url is not a user "
                          "name (letters, digits, . _ -)")
    if not (_IPV6_RE.fullmatch(host) or (_HOSTNAME_RE.fullmatch(host)
                                         and ".." not in host)):
        raise ConfigError(f"{where}: {_printable(host)[:60]!r} in the url is not a host name "
                          "or address")
    if path is not None and not re.fullmatch(r"[A-Za-z0-9._/-]*", path):
        raise ConfigError(f"{where}: the url's path {_printable(path)[:60]!r} holds "
                          "characters that are not allowed")
    port = None
    if port_text is not None:
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ConfigError(f"{where}: port {port} in the url is not between 1 and 65535")
    return user, host.strip("[]"), port


def check_ssh_options(options: Any, where: str) -> tuple[str, ...]:
    """The extra ssh argv of a host, refused unless every item is an allowed option."""
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ConfigError(f"{where}: ssh_options must be a list of strings, e.g. "
                          '["-i", "~/.ssh/bench"]')
    out: list[str] = []
    i = 0
    while i < len(options):
        opt = options[i]
        if opt in _FLAGS_ALONE:
            out.append(opt)
            i += 1
            continue
        if opt in _FLAGS_WITH_VALUE or opt == "-o":
            if i + 1 >= len(options):
                raise ConfigError(f"{where}: ssh option {opt} needs a value")
            value = options[i + 1]
            if opt == "-o":
                _check_o(value, where)
            elif not _VALUE_RE.fullmatch(value) or value.startswith("-"):
                raise ConfigError(f"{where}: ssh option {opt} value "
                                  f"{_printable(value)[:60]!r} is not allowed (a path or "
                                  "name without spaces or shell syntax)")
            out += [opt, value]
            i += 2
            continue
        if opt.startswith("-o") and len(opt) > 2:
            _check_o(opt[2:], where)
            out += ["-o", opt[2:]]
            i += 1
            continue
        raise ConfigError(f"{where}: ssh option {_printable(opt)[:60]!r} is not allowed; "
                          f"allowed: {', '.join(sorted(_FLAGS_ALONE | _FLAGS_WITH_VALUE))}"
                          " and -o KEY=VALUE with KEY one of IdentityFile, ProxyJump, "
                          "UserKnownHostsFile, ConnectTimeout, ...")
    return tuple(out)


def _check_o(setting: str, where: str) -> None:
    key, sep, value = setting.partition("=")
    if not sep or key not in SSH_OPTIONS:
        raise ConfigError(f"{where}: ssh option -o {_printable(setting)[:60]!r} is not "
                          "allowed (host keys are always checked and no option may run a "
                          f"command); allowed keys: {', '.join(sorted(SSH_OPTIONS))}")
    if not _VALUE_RE.fullmatch(value) or value.startswith("-"):
        raise ConfigError(f"{where}: ssh option -o {key} value {_printable(value)[:60]!r} is "
                          "not allowed (no spaces, quotes or shell syntax)")


def parse_host(name: Any, spec: Any, where: str, source: str = "config.toml") -> Host:
    """One ``[hosts.NAME]`` table (or a discovered endpoint in the same shape)."""
    try:
        check_name(name)
    except UsageError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    here = f"{where}: hosts.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{here} must be a table with url = \"ssh://user@host:port\"")
    unknown = sorted(set(spec) - {"url", "forge", "ssh_options"})
    if unknown:
        hint = " (no passwords in config: use an ssh key or agent)" \
            if any("pass" in k.lower() for k in unknown) else ""
        raise ConfigError(f"{here} has no setting {_printable(unknown[0])[:40]!r}; the "
                          f"settings are url, forge, ssh_options{hint}")
    if "url" not in spec:
        raise ConfigError(f"{here} needs url = \"ssh://user@host[:port]\"")
    user, hostname, port = parse_url(spec["url"], here)
    forge = spec.get("forge", "forge")
    if not isinstance(forge, str) or not _FORGE_RE.fullmatch(forge) or forge.startswith("-") \
            or ".." in forge.split("/"):
        raise ConfigError(f"{here}: forge {_printable(str(forge))[:60]!r} must be a command "
                          "name or path (letters, digits, . _ / + - and a leading ~)")
    options = check_ssh_options(spec.get("ssh_options", []), here)
    return Host(name, spec["url"], hostname, user, port, forge, options, source)


def parse_hosts(table: Any, where: str) -> tuple[Host, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [hosts] must be a table of [hosts.NAME] tables")
    return tuple(parse_host(name, spec, where) for name, spec in table.items())


# --- ssh command lines ------------------------------------------------------------------------

def ssh_argv(host: Host, remote: Sequence[str], timeout_s: float, *,
             prefix: str = "") -> list[str]:
    """The local argv running ``remote`` (an argv) on ``host``: every remote argument quoted
    for the remote shell; ``prefix`` is a fixed shell snippet of ours run before it."""
    keepalive = max(1, int(timeout_s // 3))
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={max(1, int(timeout_s))}",
            "-o", f"ServerAliveInterval={keepalive}", "-o", "ServerAliveCountMax=3",
            *host.ssh_options]
    if host.port is not None:
        argv += ["-p", str(host.port)]
    if host.user is not None:
        argv += ["-l", host.user]
    return [*argv, "--", host.hostname, prefix + remote_command(remote)]


def remote_command(argv: Sequence[str]) -> str:
    """``argv`` as one remote shell command line; a leading ``~/`` of the command stays
    unquoted so the remote shell expands it."""
    first, rest = argv[0], argv[1:]
    head = "~/" + shlex.quote(first[2:]) if first.startswith("~/") else shlex.quote(first)
    return " ".join([head, *(shlex.quote(a) for a in rest)])


def ssh_failure(host: Host, code: int, stderr: str) -> str:
    """Why ssh itself failed (exit 255), in words a user acts on."""
    text = " ".join(stderr.split())
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return (f"host {host.name}: its host key changed; if that is expected, remove the "
                f"old key with ssh-keygen -R {host.hostname}")
    if "Host key verification failed" in stderr or "No ED25519 host key is known" in stderr \
            or "host key is known" in stderr:
        return (f"host {host.name}: its host key is not in known_hosts (forge never accepts "
                f"an unknown key); check it and add it, e.g. ssh {_dest(host)} once, or "
                f"ssh-keyscan{' -p ' + str(host.port) if host.port else ''} {host.hostname} "
                ">> ~/.ssh/known_hosts after comparing fingerprints")
    if "Permission denied" in stderr:
        return (f"host {host.name}: ssh login refused (no key accepted; forge never asks for "
                "a password): add your key to its authorized_keys or set ssh_options = "
                '["-i", "KEY"]')
    if "timed out" in stderr or "Connection refused" in stderr or "No route" in stderr \
            or "Could not resolve" in stderr:
        return f"host {host.name}: cannot connect ({_printable(text)[:160]})"
    return f"host {host.name}: ssh failed with exit {code} ({_printable(text)[:160]})"


def _dest(host: Host) -> str:
    user = f"{host.user}@" if host.user else ""
    return f"{user}{host.hostname}" + (f" -p {host.port}" if host.port else "")


def run_remote(host: Host, remote: Sequence[str], timeout_s: float
               ) -> subprocess.CompletedProcess[str]:
    """Run a short command on ``host``; gives up after ``timeout_s`` (TimeoutExpired)."""
    return subprocess.run(ssh_argv(host, remote, timeout_s), capture_output=True, text=True,
                          errors="backslashreplace", timeout=timeout_s,
                          stdin=subprocess.DEVNULL, check=False)


# --- reachability -----------------------------------------------------------------------------

@dataclass
class Reach:
    host: Host
    reachable: bool
    forge_version: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.host.name, "url": self.host.url, "source": self.host.source,
                "reachable": self.reachable, "forge_version": self.forge_version,
                "reason": self.reason}


def probe(host: Host, timeout_s: float) -> Reach:
    """Log in and ask the remote forge its version: reachable means both worked."""
    try:
        proc = run_remote(host, [host.forge, "--version"], timeout_s)
    except subprocess.TimeoutExpired:
        return Reach(host, False, reason=f"host {host.name}: no answer within {timeout_s:g} s")
    except OSError as exc:
        return Reach(host, False, reason=f"cannot run ssh: {exc.strerror or exc}; install "
                     "openssh-client")
    if proc.returncode == 255:
        return Reach(host, False, reason=ssh_failure(host, 255, proc.stderr))
    out = proc.stdout.strip()
    if proc.returncode == 127 or (proc.returncode != 0 and "not found" in proc.stderr):
        return Reach(host, False, reason=f"host {host.name}: no forge command "
                     f"{host.forge!r} there; install forge-desktop on it (pipx install "
                     "forge-desktop) or set forge = \"/path/to/forge\" in "
                     f"[hosts.{host.name}]")
    if proc.returncode != 0 or not out.startswith("forge "):
        return Reach(host, False, reason=f"host {host.name}: {host.forge} --version failed "
                     f"(exit {proc.returncode}: {_printable(proc.stderr.strip())[:120]})")
    version = out.split()[1] if len(out.split()) > 1 else "?"
    return Reach(host, True, forge_version=_printable(version)[:40])


# --- hosts found in docker contexts and podman connections ------------------------------------

def _cli_json(argv: Sequence[str], timeout_s: float) -> list[Any]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []  # no docker or podman CLI here, or it hangs: no hosts from it
    if proc.returncode != 0:
        return []
    text = proc.stdout.strip()
    try:
        if text.startswith("["):
            value = json.loads(text)
            return value if isinstance(value, list) else []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return []


def discovered(timeout_s: float = 10.0) -> tuple[list[Host], list[str]]:
    """Hosts behind the ``ssh://`` docker contexts and podman connections, and one note per
    endpoint that was skipped (a name or url forge refuses)."""
    hosts: list[Host] = []
    skipped: list[str] = []
    found: list[tuple[str, str, str, list[str]]] = []
    for item in _cli_json(["docker", "context", "ls", "--format", "{{json .}}"], timeout_s):
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            found.append(("docker context", item["Name"], str(item.get("DockerEndpoint")), []))
    for item in _cli_json(["podman", "system", "connection", "list", "--format", "json"],
                          timeout_s):
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            identity = item.get("Identity")
            opts = ["-i", identity] if isinstance(identity, str) and identity else []
            found.append(("podman connection", item["Name"], str(item.get("URI")), opts))
    for source, name, url, opts in found:
        if not url.startswith("ssh://"):
            continue  # a local socket or tcp endpoint: no host to log in to
        try:
            hosts.append(parse_host(name, {"url": url, "ssh_options": opts}, source,
                                    f"{source} {name}"))
        except ConfigError as exc:
            skipped.append(f"{source} {_printable(name)[:40]!r} skipped: {exc}")
    return hosts, skipped


def all_hosts(configured: Sequence[Host], discover: bool = True
              ) -> tuple[dict[str, Host], list[str]]:
    """config.toml's hosts, then discovered ones under names config.toml does not use."""
    hosts = {h.name: h for h in configured}
    notes: list[str] = []
    if discover:
        found, notes = discovered()
        for h in found:
            hosts.setdefault(h.name, h)
    return hosts, notes


def select(names: Sequence[str], hosts: Mapping[str, Host]) -> list[Host]:
    """``--host`` values (``all``: every host) -> hosts, in the order given, no repeats."""
    if not names:
        return []
    if "all" in names:
        if not hosts:
            raise UsageError("--host all: no hosts configured; add [hosts.NAME] tables with "
                             "url = \"ssh://user@host\" to config.toml")
        return list(hosts.values())
    chosen: list[Host] = []
    for name in names:
        check_name(name, "--host")
        if name not in hosts:
            known = ", ".join(hosts) or "none configured"
            raise UsageError(f"--host {name}: no such host (hosts: {known}); add "
                             f"[hosts.{name}] with url = \"ssh://user@host\" to config.toml")
        if hosts[name] not in chosen:
            chosen.append(hosts[name])
    return chosen
