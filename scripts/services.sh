#!/usr/bin/env bash
# Start and stop the daemons forge-desktop's benchmarks and tests use.
#
#   scripts/services.sh start|stop|status [docker] [podman] [registry] [x] [dbus]
#   scripts/services.sh stop --last-start [SERVICE...]
#
# No service named means all of them (`stop --last-start` alone: only the last-start ones). State lives in .run/ (pid files, logs, sockets):
#   <name>.pid       a daemon this script started (only these are ever stopped)
#   <svc>.external   the service already answered when `start` ran: not ours, never stopped
#   last-start       the services the most recent `start` itself started
#                    (`stop --last-start` stops those, plus any named: `make test` stops
#                    registry/x/dbus and only the engines its own start started, leaving
#                    alone engines that were up before it, e.g. from `make run`)
#   env.sh           exports for the running services (DISPLAY, DBUS_SESSION_BUS_ADDRESS,
#                    FORGE_TEST_REGISTRY): `. .run/env.sh`
#
# Environment: FORGE_TEST_REGISTRY_PORT (default 5000).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=$ROOT/.run
ALL=(docker podman registry x dbus)

DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
PODMAN_SOCK=/run/podman/podman.sock
REGISTRY_PORT=${FORGE_TEST_REGISTRY_PORT:-5000}
X_DISPLAY=:99
BUS_SOCK=$RUN/bus.sock
if [ ${#BUS_SOCK} -gt 100 ]; then # a unix socket path must fit in 108 bytes
    BUS_SOCK=/tmp/forge-desktop-bus-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).sock
fi

say() { printf 'services: %s\n' "$*"; }
die() {
    printf 'services: ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop|status [docker] [podman] [registry] [x] [dbus]" >&2
    echo "       $0 stop --last-start [SERVICE...]" >&2
    exit 2
}

# ---------------------------------------------------------------- processes

# The program each pid file must belong to (guards against a recycled pid).
prog_of() {
    case $1 in
        dockerd) echo dockerd ;;
        podman) echo podman ;;
        registry) echo docker-registry ;;
        xvfb) echo Xvfb ;;
        trayer) echo trayer ;;
        dbus) echo dbus-daemon ;;
        *) return 1 ;;
    esac
}

alive() { # alive PID: exists and is not a zombie
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# our_pid NAME: prints the pid from .run/NAME.pid if that process is alive and is the
# expected program; removes a stale pid file.
our_pid() {
    local f=$RUN/$1.pid pid prog
    [ -f "$f" ] || return 1
    pid=$(tr -dc '0-9' <"$f")
    prog=$(prog_of "$1")
    if [ -n "$pid" ] && alive "$pid" \
        && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1 | grep -q "$prog\$"; then
        echo "$pid"
        return 0
    fi
    rm -f "$f"
    return 1
}

# spawn NAME LOG CMD...: runs CMD in the background in its own session, detached from our
# stdio and any other inherited descriptor; records its pid in .run/NAME.pid.
# SPAWN_STDOUT=FILE sends stdout there instead of LOG.
SPAWNED_PID=
spawn() {
    local name=$1 log=$2
    shift 2
    local out=${SPAWN_STDOUT:-$log}
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        # a daemon outlives the checkout that started it (services.sh never stops an engine
        # it found running): run from / so a removed checkout is not its working directory
        # (the podman service's containers then failed to start: "write child: broken pipe")
        cd /
        exec setsid "$@" </dev/null >>"$out" 2>>"$log"
    ) &
    SPAWNED_PID=$!
    echo "$SPAWNED_PID" >"$RUN/$name.pid"
}

# wait_until SECONDS PID CMD...: polls CMD until it succeeds; fails early if PID dies.
wait_until() {
    local secs=$1 pid=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        alive "$pid" || return 1
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# stop_pid NAME LABEL: TERM the process in .run/NAME.pid, KILL after 15 s, wait for it.
stop_pid() {
    local name=$1 label=$2 pid children c i
    if ! pid=$(our_pid "$name"); then
        return 0
    fi
    children=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        alive "$pid" || break
        sleep 0.2
    done
    if alive "$pid"; then
        say "$label: still running 15 s after SIGTERM, sending SIGKILL (pid $pid)"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 25; i++)); do
            alive "$pid" || break
            sleep 0.2
        done
    fi
    # Helpers the daemon started itself (dockerd's containerd) must not outlive it.
    for c in $children; do
        if alive "$c"; then
            kill -TERM "$c" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                alive "$c" || break
                sleep 0.2
            done
            if alive "$c"; then kill -KILL "$c" 2>/dev/null || true; fi
        fi
    done
    if alive "$pid"; then die "$label: pid $pid did not exit"; fi
    rm -f "$RUN/$name.pid"
    say "$label: stopped (pid $pid)"
}

failed_start() { # failed_start NAME LABEL LOG
    say "$2: failed to start; end of $3:" >&2
    tail -n 20 "$3" 2>/dev/null | sed 's/^/    /' >&2 || true
    stop_pid "$1" "$2" >/dev/null || true
    rm -f "$RUN/$1.pid"
    exit 1
}

started() { echo "$1" >>"$RUN/last-start"; }

# ---------------------------------------------------------------- probes

docker_ok() { timeout 5 "$DOCKER" version >/dev/null 2>&1; }
podman_ok() {
    [ "$(curl -s --max-time 5 --unix-socket "$PODMAN_SOCK" http://d/_ping 2>/dev/null)" = OK ]
}
registry_ok() { curl -fs --max-time 3 "http://127.0.0.1:$1/v2/" >/dev/null 2>&1; }
x_ok() {
    if command -v xdpyinfo >/dev/null 2>&1; then
        timeout 5 xdpyinfo -display "$X_DISPLAY" >/dev/null 2>&1
    else
        [ -S "/tmp/.X11-unix/X${X_DISPLAY#:}" ]
    fi
}
tray_ok() { # a window of trayer's exists on the display
    DISPLAY=$X_DISPLAY timeout 5 xwininfo -root -tree 2>/dev/null | grep -q '"trayer"'
}
dbus_ok() {
    local addr
    addr=$(head -n 1 "$RUN/dbus.address" 2>/dev/null) || return 1
    [ -n "$addr" ] || return 1
    if command -v dbus-send >/dev/null 2>&1; then
        timeout 5 dbus-send --bus="$addr" --print-reply --dest=org.freedesktop.DBus \
            /org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1
    else
        [ -S "$BUS_SOCK" ]
    fi
}

# ---------------------------------------------------------------- start

start_docker() {
    local pid
    if pid=$(our_pid dockerd); then
        wait_until 30 "$pid" docker_ok || failed_start dockerd docker "$RUN/dockerd.log"
        say "docker: already running (started by services.sh, pid $pid)"
        return
    fi
    if docker_ok; then
        echo "dockerd was already answering when services.sh started; not ours, never stopped" \
            >"$RUN/docker.external"
        say "docker: already running, not started by services.sh (will not stop it)"
        return
    fi
    rm -f "$RUN/docker.external"
    command -v dockerd >/dev/null 2>&1 || die "docker: dockerd not found (run scripts/provision.sh)"
    spawn dockerd "$RUN/dockerd.log" dockerd --iptables=false --ip6tables=false --bridge=none \
        --default-ulimit nofile=1024:1024 --default-ulimit nproc=1024:1024
    wait_until 30 "$SPAWNED_PID" docker_ok || failed_start dockerd docker "$RUN/dockerd.log"
    started docker
    say "docker: started dockerd (pid $SPAWNED_PID, log .run/dockerd.log)"
}

start_podman() {
    local pid
    if pid=$(our_pid podman); then
        wait_until 20 "$pid" podman_ok || failed_start podman podman "$RUN/podman.log"
        say "podman: already running (started by services.sh, pid $pid)"
        return
    fi
    if podman_ok; then
        echo "$PODMAN_SOCK was already answering when services.sh started; not ours, never stopped" \
            >"$RUN/podman.external"
        say "podman: already running, not started by services.sh (will not stop it)"
        return
    fi
    rm -f "$RUN/podman.external"
    command -v podman >/dev/null 2>&1 || die "podman: podman not found (run scripts/provision.sh)"
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    if [ -e "$PODMAN_SOCK" ]; then
        say "podman: removing stale socket $PODMAN_SOCK (nothing answers on it)"
        rm -f "$PODMAN_SOCK"
    fi
    spawn podman "$RUN/podman.log" podman system service --time=0 "unix://$PODMAN_SOCK"
    wait_until 20 "$SPAWNED_PID" podman_ok || failed_start podman podman "$RUN/podman.log"
    started podman
    say "podman: started podman system service on $PODMAN_SOCK (pid $SPAWNED_PID, log .run/podman.log)"
}

start_registry() {
    local pid port=$REGISTRY_PORT
    if pid=$(our_pid registry); then
        port=$(cat "$RUN/registry.port" 2>/dev/null || echo "$port")
        wait_until 20 "$pid" registry_ok "$port" || failed_start registry registry "$RUN/registry.log"
        say "registry: already running at 127.0.0.1:$port (started by services.sh, pid $pid)"
        return
    fi
    echo "$port" >"$RUN/registry.port"
    if registry_ok "$port"; then
        echo "a registry already answered on 127.0.0.1:$port; not ours, never stopped" \
            >"$RUN/registry.external"
        say "registry: already answering at 127.0.0.1:$port, not started by services.sh (will not stop it)"
        return
    fi
    rm -f "$RUN/registry.external"
    command -v docker-registry >/dev/null 2>&1 \
        || die "registry: docker-registry not found (run scripts/provision.sh test)"
    mkdir -p "$RUN/registry-data"
    # Not Debian's /etc/docker/registry/config.yml: it enables an htpasswd auth that is broken.
    cat >"$RUN/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $RUN/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    spawn registry "$RUN/registry.log" docker-registry serve "$RUN/registry.yml"
    wait_until 20 "$SPAWNED_PID" registry_ok "$port" || failed_start registry registry "$RUN/registry.log"
    started registry
    say "registry: started docker-registry at 127.0.0.1:$port (pid $SPAWNED_PID, log .run/registry.log)"
}

start_x() {
    local pid ours_x=0
    if pid=$(our_pid xvfb); then
        wait_until 15 "$pid" x_ok || failed_start xvfb Xvfb "$RUN/xvfb.log"
        ours_x=1
        say "x: Xvfb $X_DISPLAY already running (started by services.sh, pid $pid)"
    elif x_ok; then
        echo "display $X_DISPLAY was already served when services.sh started; not ours, never stopped" \
            >"$RUN/x.external"
        say "x: display $X_DISPLAY already served, not started by services.sh (will not stop it)"
    else
        rm -f "$RUN/x.external"
        command -v Xvfb >/dev/null 2>&1 || die "x: Xvfb not found (run scripts/provision.sh test)"
        spawn xvfb "$RUN/xvfb.log" Xvfb "$X_DISPLAY" -screen 0 1280x800x24 -nolisten tcp
        wait_until 15 "$SPAWNED_PID" x_ok || failed_start xvfb Xvfb "$RUN/xvfb.log"
        ours_x=1
        started x
        say "x: started Xvfb $X_DISPLAY (pid $SPAWNED_PID, log .run/xvfb.log)"
    fi

    if pid=$(our_pid trayer); then
        say "x: trayer already running (started by services.sh, pid $pid)"
        return
    fi
    if [ "$ours_x" = 0 ] && tray_ok; then
        say "x: a trayer already runs on $X_DISPLAY, not started by services.sh"
        return
    fi
    command -v trayer >/dev/null 2>&1 || die "x: trayer not found (run scripts/provision.sh test)"
    DISPLAY=$X_DISPLAY spawn trayer "$RUN/trayer.log" trayer --edge top --align right \
        --widthtype request --height 24 --transparent false
    if command -v xwininfo >/dev/null 2>&1; then
        wait_until 10 "$SPAWNED_PID" tray_ok || failed_start trayer trayer "$RUN/trayer.log"
    else
        sleep 1
        alive "$SPAWNED_PID" || failed_start trayer trayer "$RUN/trayer.log"
    fi
    # `stop x` stops trayer and Xvfb; record x once even if only trayer was new.
    grep -qx x "$RUN/last-start" 2>/dev/null || started x
    say "x: started trayer on $X_DISPLAY (pid $SPAWNED_PID, log .run/trayer.log)"
}

start_dbus() {
    local pid
    if pid=$(our_pid dbus); then
        wait_until 10 "$pid" dbus_ok || failed_start dbus dbus "$RUN/dbus.log"
        say "dbus: private session bus already running (started by services.sh, pid $pid)"
        return
    fi
    command -v dbus-daemon >/dev/null 2>&1 || die "dbus: dbus-daemon not found (run scripts/provision.sh test)"
    # No <servicedir>: nothing is auto-activated, a test's own server owns the names it needs.
    cat >"$RUN/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$BUS_SOCK</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    rm -f "$BUS_SOCK" "$RUN/dbus.address"
    SPAWN_STDOUT=$RUN/dbus.address spawn dbus "$RUN/dbus.log" dbus-daemon \
        --config-file="$RUN/session.conf" --nofork --nopidfile --print-address=1
    wait_until 10 "$SPAWNED_PID" dbus_ok || failed_start dbus dbus "$RUN/dbus.log"
    started dbus
    say "dbus: started private session bus $(head -n 1 "$RUN/dbus.address") (pid $SPAWNED_PID)"
}

# ---------------------------------------------------------------- stop

stop_service() {
    case $1 in
        docker)
            stop_pid dockerd docker
            rm -f "$RUN/docker.external"
            ;;
        podman)
            if our_pid podman >/dev/null; then
                stop_pid podman podman
                podman_ok || rm -f "$PODMAN_SOCK"
            fi
            rm -f "$RUN/podman.external"
            ;;
        registry)
            stop_pid registry registry
            rm -f "$RUN/registry.external" "$RUN/registry.port"
            ;;
        x)
            stop_pid trayer trayer
            stop_pid xvfb Xvfb
            rm -f "$RUN/x.external"
            ;;
        dbus)
            stop_pid dbus dbus
            rm -f "$RUN/dbus.address" "$BUS_SOCK"
            ;;
    esac
}

# ---------------------------------------------------------------- status

status_service() {
    local pid
    case $1 in
        docker)
            if pid=$(our_pid dockerd); then
                say "docker: running, started by services.sh (pid $pid)"
            elif docker_ok; then
                say "docker: running, not started by services.sh"
            else
                say "docker: not running"
            fi
            ;;
        podman)
            if pid=$(our_pid podman); then
                say "podman: running on $PODMAN_SOCK, started by services.sh (pid $pid)"
            elif podman_ok; then
                say "podman: running on $PODMAN_SOCK, not started by services.sh"
            else
                say "podman: not running"
            fi
            ;;
        registry)
            local port
            port=$(cat "$RUN/registry.port" 2>/dev/null || echo "$REGISTRY_PORT")
            if pid=$(our_pid registry); then
                say "registry: running at 127.0.0.1:$port, started by services.sh (pid $pid)"
            elif registry_ok "$port"; then
                say "registry: running at 127.0.0.1:$port, not started by services.sh"
            else
                say "registry: not running"
            fi
            ;;
        x)
            local xs tray
            if pid=$(our_pid xvfb); then
                xs="Xvfb $X_DISPLAY running, started by services.sh (pid $pid)"
            elif x_ok; then
                xs="display $X_DISPLAY served, not started by services.sh"
            else
                xs="Xvfb $X_DISPLAY not running"
            fi
            if pid=$(our_pid trayer); then
                tray="trayer started by services.sh (pid $pid)"
            else
                tray="no trayer started by services.sh"
            fi
            say "x: $xs; $tray"
            ;;
        dbus)
            if pid=$(our_pid dbus); then
                say "dbus: running, started by services.sh (pid $pid), $(head -n 1 "$RUN/dbus.address" 2>/dev/null)"
            else
                say "dbus: not running"
            fi
            ;;
    esac
}

# ---------------------------------------------------------------- env.sh

write_env() {
    local tmp=$RUN/env.sh.tmp port
    {
        echo "# Written by scripts/services.sh: exports for the services running now."
        if our_pid xvfb >/dev/null || [ -f "$RUN/x.external" ]; then
            echo "export DISPLAY=$X_DISPLAY"
        fi
        if our_pid dbus >/dev/null && [ -s "$RUN/dbus.address" ]; then
            printf "export DBUS_SESSION_BUS_ADDRESS='%s'\n" "$(head -n 1 "$RUN/dbus.address")"
        fi
        if our_pid registry >/dev/null || [ -f "$RUN/registry.external" ]; then
            port=$(cat "$RUN/registry.port" 2>/dev/null || echo "$REGISTRY_PORT")
            echo "export FORGE_TEST_REGISTRY=127.0.0.1:$port"
        fi
    } >"$tmp"
    mv "$tmp" "$RUN/env.sh"
}

# ---------------------------------------------------------------- main

[ $# -ge 1 ] || usage
cmd=$1
shift
last_start=0
services=()
for arg in "$@"; do
    case $arg in
        docker | podman | registry | x | dbus) services+=("$arg") ;;
        --last-start) last_start=1 ;;
        *) usage ;;
    esac
done
if [ "$last_start" = 1 ]; then
    [ "$cmd" = stop ] || usage
    if [ -f "$RUN/last-start" ]; then
        mapfile -t -O "${#services[@]}" services <"$RUN/last-start"
    fi
elif [ ${#services[@]} -eq 0 ]; then
    services=("${ALL[@]}")
fi

case $cmd in
    start)
        mkdir -p "$RUN"
        : >"$RUN/last-start"
        trap write_env EXIT
        for s in "${services[@]}"; do
            "start_$s"
        done
        ;;
    stop)
        [ -d "$RUN" ] || exit 0
        trap write_env EXIT
        for s in dbus x registry podman docker; do # reverse start order
            for want in "${services[@]}"; do
                if [ "$want" = "$s" ]; then
                    stop_service "$s"
                    if [ -f "$RUN/last-start" ]; then
                        grep -vx "$s" "$RUN/last-start" >"$RUN/last-start.tmp" || true
                        mv "$RUN/last-start.tmp" "$RUN/last-start"
                    fi
                fi
            done
        done
        ;;
    status)
        for s in "${services[@]}"; do
            status_service "$s"
        done
        ;;
    *) usage ;;
esac
