#!/bin/sh
# rpi-post-install.sh: RAUC post-install handler of the Raspberry Pi image. A bundle carries one
# boot.vfat for either slot; render-config.sh writes the slot's own config.txt and cmdline.txt (root=rootfs-X,
# rauc.slot=X) and the device's CAN HAT (its device tree nodes) into the boot slot RAUC has just written.
set -eu
for n in ${RAUC_TARGET_SLOTS:-}; do
    eval "class=\${RAUC_SLOT_CLASS_$n:-} dev=\${RAUC_SLOT_DEVICE_$n:-}"
    [ "$class" = boot ] || continue
    case "$dev" in *boot-a) slot=A ;; *boot-b) slot=B ;; *) echo "rpi-post-install: boot slot device $dev: expected boot-a or boot-b" >&2; exit 1 ;; esac
    mnt=$(mktemp -d)
    mount -t vfat "$dev" "$mnt"
    /usr/lib/edge-assistant/rpi/render-config.sh "$slot" "$mnt" || { umount "$mnt"; exit 1; }
    sync; umount "$mnt"; rmdir "$mnt"
done
