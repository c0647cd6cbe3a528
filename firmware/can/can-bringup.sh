#!/bin/sh
# Bring up a CAN interface for edge-assistant: a real controller (Pi MCP2515, Jetson mttcan) at a bitrate,
# or a virtual vcan interface (QEMU guest, CI, bench). Idempotent; prints the link state at the end.
#
#   can-bringup.sh can0 500000            # classic CAN at 500 kbit/s, automatic bus-off restart
#   can-bringup.sh can0 500000 2000000    # CAN FD: 500 kbit/s arbitration, 2 Mbit/s data
#   can-bringup.sh vcan0                  # virtual interface (modprobe vcan)
#   can-bringup.sh --check can0           # only report: SocketCAN support, link state, error counters
#
# Environment: RESTART_MS (bus-off auto restart, default 100), TXQUEUELEN (default 1024),
#              SAMPLE_POINT (default 0.875, the CiA recommendation for 500 kbit/s).
set -eu

RESTART_MS=${RESTART_MS:-100}
TXQUEUELEN=${TXQUEUELEN:-1024}
SAMPLE_POINT=${SAMPLE_POINT:-0.875}

die() { echo "can-bringup: $*" >&2; exit 1; }

have_socketcan() {
    # errno 97 (EAFNOSUPPORT) here means the kernel was built without CONFIG_CAN: nothing below can work
    python3 - <<'PY' 2>/dev/null
import socket, sys
try:
    socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW).close()
except OSError as exc:
    sys.exit(f"socket(AF_CAN) failed: errno {exc.errno} ({exc.strerror})")
PY
}

check() {
    if have_socketcan; then echo "SocketCAN: available"; else echo "SocketCAN: NOT available (errno 97: kernel without CONFIG_CAN)"; fi
    ip -details -statistics link show "$1" 2>/dev/null || echo "$1: no such interface"
}

[ $# -ge 1 ] || die "usage: $0 [--check] IFACE [BITRATE [DATA_BITRATE]]"
if [ "$1" = "--check" ]; then
    [ $# -ge 2 ] || die "usage: $0 --check IFACE"
    check "$2"
    exit 0
fi
IFACE=$1
BITRATE=${2:-}
DBITRATE=${3:-}
[ "$(id -u)" -eq 0 ] || die "run as root (ip link needs CAP_NET_ADMIN)"

modprobe can 2>/dev/null || true
modprobe can_raw 2>/dev/null || true
have_socketcan || die "this kernel has no SocketCAN (socket(AF_CAN) fails with errno 97); use --bus virtual:can0"

case "$IFACE" in
vcan*)
    modprobe vcan 2>/dev/null || die "no vcan module: install linux-modules-extra-\$(uname -r) (Debian/Ubuntu)"
    ip link show "$IFACE" >/dev/null 2>&1 || ip link add dev "$IFACE" type vcan
    ip link set "$IFACE" mtu 72 2>/dev/null || true  # CAN FD capable virtual bus
    ip link set "$IFACE" up
    ;;
*)
    [ -n "$BITRATE" ] || die "give the bitrate of $IFACE (e.g. 500000): the vehicle bus decides it, not us"
    case "$BITRATE" in *[!0-9]*) die "bitrate '$BITRATE' must be an integer in bit/s" ;; esac
    # the Jetson's controller is a kernel module; on the Pi the MCP2515 comes from the device-tree overlay
    [ -d "/sys/class/net/$IFACE" ] || modprobe mttcan 2>/dev/null || true
    [ -d "/sys/class/net/$IFACE" ] || die "$IFACE does not exist: Pi: check the mcp2515 overlay in config.txt; Jetson: pinmux and mttcan (see README.md)"
    ip link set "$IFACE" down 2>/dev/null || true
    if [ -n "$DBITRATE" ]; then
        ip link set "$IFACE" type can bitrate "$BITRATE" sample-point "$SAMPLE_POINT" \
            dbitrate "$DBITRATE" fd on restart-ms "$RESTART_MS" berr-reporting on
    else
        ip link set "$IFACE" type can bitrate "$BITRATE" sample-point "$SAMPLE_POINT" \
            restart-ms "$RESTART_MS" berr-reporting on
    fi
    ip link set "$IFACE" txqueuelen "$TXQUEUELEN"
    ip link set "$IFACE" up
    ;;
esac
check "$IFACE"
