#!/bin/sh
# install-device.sh: provision a Raspberry Pi 4/5 or Jetson Orin Nano for edge-assistant updates.
#
#   install-device.sh --keyring PUBKEY.pem [--keyring ...] [--board rpi4|rpi5|jetson-orin-nano]
#                     [--agent-wheelhouse DIR] [--destdir DIR] [--no-enable]
#
# Installs the systemd units, the service user (sysusers.d), /etc/default/edge-assistant, the ALSA
# capture config, the trusted update keys and the directory layout under /opt/edge-assistant.
# --agent-wheelhouse DIR builds the update agent (/opt/edge-assistant/agent, a venv) offline from the
# wheels in DIR; the application itself then arrives as a signed bundle in the spool.
# --destdir DIR stages everything into an image root instead of the running system (no venv, no
# systemctl: run those in the image's first boot or chroot). Existing config files are never
# overwritten; the new version is put next to them as *.edge-assistant.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DESTDIR=
BOARD=
WHEELHOUSE=
ENABLE=1
KEYS=

die() { echo "install-device: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
        --board) [ $# -ge 2 ] || die "--board needs a value"; BOARD=$2; shift 2 ;;
        --keyring) [ $# -ge 2 ] || die "--keyring needs a public key file"
                   [ -f "$2" ] || die "--keyring $2: no such file"
                   grep -q "BEGIN PUBLIC KEY" "$2" || die "--keyring $2: not a PEM public key"
                   KEYS="$KEYS $2"; shift 2 ;;
        --agent-wheelhouse) [ $# -ge 2 ] || die "--agent-wheelhouse needs a directory"; WHEELHOUSE=$2; shift 2 ;;
        --no-enable) ENABLE=0; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ -n "$KEYS" ] || die "give at least one --keyring PUBKEY.pem: without a trusted key no bundle can install"
case "$BOARD" in
    ''|rpi4|rpi5|jetson-orin-nano) ;;
    *) die "--board $BOARD: expected rpi4, rpi5 or jetson-orin-nano" ;;
esac
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root to install into the running system (or use --destdir to stage an image)"
fi

# install_new SRC DEST MODE: install, but keep an existing DEST and put ours beside it.
install_new() {
    if [ -e "$2" ] && ! cmp -s "$1" "$2"; then
        install -m "$3" "$1" "$2.edge-assistant"
        echo "kept $2; the new version is $2.edge-assistant"
    else
        install -m "$3" "$1" "$2"
    fi
}

R=$DESTDIR
install -d -m 0755 "$R/etc/systemd/system" "$R/usr/lib/sysusers.d" "$R/etc/default" \
    "$R/etc/edge-assistant/keyring" "$R/opt/edge-assistant/slots"
install -d -m 0750 "$R/var/lib/edge-assistant-update/spool"

for unit in "$HERE"/systemd/*.service "$HERE"/systemd/*.timer "$HERE"/systemd/*.path; do
    install -m 0644 "$unit" "$R/etc/systemd/system/$(basename "$unit")"
done
install -m 0644 "$HERE/systemd/edge-assistant.sysusers" "$R/usr/lib/sysusers.d/edge-assistant.conf"
install_new "$HERE/systemd/edge-assistant.default" "$R/etc/default/edge-assistant" 0644
install_new "$HERE/audio/asound.conf" "$R/etc/asound.conf" 0644
install_new "$HERE/config/demo.toml" "$R/etc/edge-assistant/device.toml" 0644
for key in $KEYS; do
    install -m 0644 "$key" "$R/etc/edge-assistant/keyring/$(basename "$key")"
done
if [ -n "$BOARD" ]; then
    echo "$BOARD" > "$R/etc/edge-assistant/board"
fi
echo "installed units, sysusers, defaults, asound.conf, device.toml (the demo; edit it for the car) and $(echo "$KEYS" | wc -w) key(s) under ${R:-/}"

if [ -n "$DESTDIR" ]; then
    echo "staged into $DESTDIR: build the agent venv and enable the units inside the image"
    exit 0
fi

if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || die "--agent-wheelhouse $WHEELHOUSE: not a directory"
    python3 -m venv /opt/edge-assistant/agent
    /opt/edge-assistant/agent/bin/python -m pip install --no-index --find-links "$WHEELHOUSE" edge-assistant
    echo "agent installed: /opt/edge-assistant/agent/bin/edge-assistant"
fi

if [ "$ENABLE" -eq 1 ] && [ -d /run/systemd/system ]; then
    systemd-sysusers
    systemctl daemon-reload
    systemctl enable --now edge-assistant-update.path
    systemctl enable edge-assistant.service
    echo "enabled; drop a signed bundle into /var/lib/edge-assistant-update/spool to install the application"
fi
