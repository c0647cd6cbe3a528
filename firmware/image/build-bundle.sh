#!/bin/bash
# build-bundle.sh OUTDIR: signed RAUC bundles (format verity) of the slot image that build-image.sh made.
#
#   OUTDIR/bundle-good.raucb    rootfs.ext4 of the image, version VERSION (+ BUNDLE_SUFFIX); the rpi board's
#                               bundles also carry boot.vfat for the boot slot of the same group
# With TEST_BUNDLES=1 (make test-system) also what the system tests need to see refused or rolled back:
#   OUTDIR/bundle-tampered.raucb     bundle-good with one byte of the payload changed
#   OUTDIR/bundle-other-board.raucb  a correctly signed bundle for another board's `compatible`
#   OUTDIR/bundle-old.raucb          a correctly signed bundle for this board, below the image's version floor
#   OUTDIR/bundle-broken.raucb       a correctly signed release whose assistant never becomes healthy
#   OUTDIR/bundle-power-cut.raucb    bundle-good plus a slot-post-install hook that pauses after the slot
#                                    is written, before RAUC switches the boot order (test-hooks/)
# Keys: RAUC_CERT / RAUC_KEY (default: the development signer in OUTDIR/keys), RAUC_KEYRING to check
# the result against (default: the development CA).
set -euo pipefail
OUT=$(cd "${1:?usage: build-bundle.sh OUTDIR}" && pwd)
[ -f "$OUT/rootfs.ext4" ] && [ -f "$OUT/image.env" ] || { echo "build-bundle: run make image first ($OUT)" >&2; exit 2; }
# shellcheck disable=SC1091
. "$OUT/image.env"
CERT=${RAUC_CERT:-$OUT/keys/signing.cert.pem}
KEY=${RAUC_KEY:-$OUT/keys/signing.key.pem}
KEYRING=${RAUC_KEYRING:-$OUT/keys/ca.cert.pem}
T0=$(date +%s)
step() { printf '== [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

bundle() {  # bundle NAME COMPATIBLE VERSION EXT4 [HOOK: run as the rootfs image's slot-post-install]
    local dir="$OUT/bundle-$1.d" hooks="" image_hooks="" boot_image=""
    rm -rf "$dir" "$OUT/bundle-$1.raucb"
    mkdir -p "$dir"
    ln "$4" "$dir/rootfs.ext4" 2>/dev/null || cp "$4" "$dir/rootfs.ext4"
    if [ "$BOARD" = rpi ]; then
        # RAUC writes it raw to boot.N (the child of the rootfs slot it installs to); the post-install
        # handler then renders that slot's config.txt, cmdline.txt and CAN HAT (rpi-post-install.sh)
        ln "$OUT/boot.vfat" "$dir/boot.vfat" 2>/dev/null || cp "$OUT/boot.vfat" "$dir/boot.vfat"
        boot_image=$'\n[image.boot]\nfilename=boot.vfat\n'
    fi
    if [ -n "${5:-}" ]; then
        install -m 0755 "$5" "$dir/hook.sh"
        hooks=$'\n[hooks]\nfilename=hook.sh\n'
        image_hooks=$'\nhooks=post-install'
    fi
    cat > "$dir/manifest.raucm" <<MANIFEST
[update]
compatible=$2
version=$3
description=edge-assistant $3 for $2

[bundle]
format=verity
$hooks
[image.rootfs]
filename=rootfs.ext4$image_hooks
$boot_image
MANIFEST
    # zstd: several times faster to build than the default gzip at a similar size; the kernel mounts it
    rauc bundle --cert="$CERT" --key="$KEY" --keyring="$KEYRING" \
        --mksquashfs-args="-comp zstd -Xcompression-level 6" "$dir" "$OUT/bundle-$1.raucb" >/dev/null
    rm -rf "$dir"
    step "bundle-$1.raucb: $2 $3, $(du -m "$OUT/bundle-$1.raucb" | cut -f1) MiB"
}

GOOD_VERSION=$VERSION${BUNDLE_SUFFIX:-}
bundle good "$COMPATIBLE" "$GOOD_VERSION" "$OUT/rootfs.ext4"
rauc info --keyring="$KEYRING" "$OUT/bundle-good.raucb" 2>/dev/null | sed -n '1,12p'

if [ "${TEST_BUNDLES:-0}" = 1 ]; then
    # tampered: flip one byte in the middle of the squashfs payload (the signature stays as it was)
    cp "$OUT/bundle-good.raucb" "$OUT/bundle-tampered.raucb"
    size=$(stat -c %s "$OUT/bundle-tampered.raucb")
    off=$((size / 3))
    byte=$(dd if="$OUT/bundle-tampered.raucb" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
    printf "$(printf '\\%03o' $(( (byte + 1) % 256 )))" \
        | dd of="$OUT/bundle-tampered.raucb" bs=1 seek=$off count=1 conv=notrunc status=none
    step "bundle-tampered.raucb: byte $off changed"

    # another board: a small but valid ext4 is enough, `compatible` is refused before the payload is used
    rm -rf "$OUT/other.ext4" "$OUT/other.d" && mkdir "$OUT/other.d"
    head -c 1M /dev/urandom > "$OUT/other.d/payload"  # incompressible: squashfs needs > 4 KiB
    mkfs.ext4 -q -L rootfs -d "$OUT/other.d" "$OUT/other.ext4" 16M && rm -rf "$OUT/other.d"
    bundle other-board edge-assistant-rpi5 "$VERSION" "$OUT/other.ext4"

    # below the floor: a release for this board older than the version floor in the image's rootfs (the
    # last non-zero part of the floor minus one: 0.1.0 -> 0.0.0). The pre-install handler refuses it
    # before any slot is written, so the same small ext4 does.
    floor=$(debugfs -R "cat /usr/lib/edge-assistant/version-floor" "$OUT/rootfs.ext4" 2>/dev/null \
        | sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' || true)
    old=$(echo "$floor" | awk -F. -v OFS=. '{ for (i = NF; i > 0; i--) if ($i + 0 > 0) { $i = $i - 1; break } }
                                             i > 0 { print }')
    [ -n "$old" ] || { echo "build-bundle: no release below the image's version floor '$floor' (image too old?)" >&2; exit 1; }
    bundle old "$COMPATIBLE" "$old" "$OUT/other.ext4"
    rm -f "$OUT/other.ext4"

    # broken release: the assistant's ExecStart fails, so the health check never marks the slot good
    cp --sparse=always "$OUT/rootfs.ext4" "$OUT/broken.ext4"
    printf '[Service]\nExecStart=\nExecStart=/bin/false\n' > "$OUT/99-broken.conf"
    # (mkdir: the image may have no drop-in of its own for the unit; an existing directory is kept)
    printf 'mkdir /etc/systemd/system/edge-assistant.service.d\ncd /etc/systemd/system/edge-assistant.service.d\nwrite %s 99-broken.conf\n' \
        "$OUT/99-broken.conf" \
        | debugfs -w -f - "$OUT/broken.ext4" >/dev/null 2>&1
    debugfs -R "cat /etc/systemd/system/edge-assistant.service.d/99-broken.conf" "$OUT/broken.ext4" 2>/dev/null \
        | grep -q /bin/false || { echo "build-bundle: could not write the broken drop-in" >&2; exit 1; }
    bundle broken "$COMPATIBLE" "$VERSION-broken" "$OUT/broken.ext4"
    rm -f "$OUT/broken.ext4" "$OUT/99-broken.conf"

    # power cut between the write of the slot and the boot-order switch (tests/system/test_power_cut.py)
    bundle power-cut "$COMPATIBLE" "$GOOD_VERSION-power-cut" "$OUT/rootfs.ext4" \
        "$(dirname "$0")/test-hooks/power-cut-pause.sh"
fi
