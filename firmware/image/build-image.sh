#!/bin/bash
# build-image.sh OUTDIR: the edge-assistant disk image for a board, from Debian packages (mmdebstrap).
#
#   OUTDIR/disk.img        GPT: efi (GRUB, grubenv) | rootfs-a | rootfs-b | data   (flash this)
#   OUTDIR/rootfs.ext4     the slot image (what a RAUC bundle carries)
#   OUTDIR/keys/           development CA + signing key, made on first use (outside the repository)
#   OUTDIR/cache/debs      downloaded .debs, reused by the next build
# Environment: BOARD (qemu-x86_64), VERSION (default: from pyproject + git), MODELS (model cache),
# IMAGE_SOURCE (worktree or HEAD: which application source), MIRROR (Debian mirror), SLOT_MB / DATA_MB / EFI_MB (partition sizes), RAUC_KEYRING (CA certificate
# the device trusts; default the dev CA), PYTHON (host Python 3.11 that builds the wheels).
set -euo pipefail

OUT=${1:?usage: build-image.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BOARD=${BOARD:-qemu-x86_64}
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
MODELS=${MODELS:-$HOME/.cache/edge-assistant/models}
EFI_MB=${EFI_MB:-64}
SLOT_MB=${SLOT_MB:-2048}
DATA_MB=${DATA_MB:-1536}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
case "$BOARD" in
    qemu-x86_64) ARCH=amd64 ;;
    *) echo "build-image: BOARD=$BOARD: only qemu-x86_64 is built so far (see firmware/README.md)" >&2; exit 2 ;;
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
rm -f "$OUT"/wheelhouse/edge_assistant-*.whl
"$PYTHON" -m pip wheel -q --wheel-dir "$OUT/wheelhouse" --find-links "$OUT/wheelhouse" "$OUT/src"
echo "$(ls "$OUT/wheelhouse" | wc -l) wheels, $(du -sh "$OUT/wheelhouse" | cut -f1)"

step "root filesystem: mmdebstrap $SUITE/$ARCH for $BOARD (progress below; .debs cached in $OUT/cache/debs)"
dpkgopts=()
if [ -f "$HERE/boards/$BOARD/dpkg.cfg" ]; then  # board-specific path-exclude/-include (kernel modules)
    while read -r line; do dpkgopts+=(--dpkgopt="$line"); done < <(sed -e 's/#.*//' -e '/^ *$/d' "$HERE/boards/$BOARD/dpkg.cfg")
fi
pkgs=$(cat "$HERE/packages" "$HERE/boards/$BOARD/packages" | sed 's/#.*//' | xargs | tr ' ' ',')
mkdir -p "$OUT/cache/debs"
rm -rf "$OUT/rootfs"
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
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main"

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

step "EFI system partition: GRUB with the A/B boot counter"
MODS="part_gpt fat ext2 normal linux configfile loadenv test echo regexp serial terminal efi_gop gzio"
grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$OUT/BOOTX64.EFI" $MODS
grub-editenv "$OUT/grubenv" create
grub-editenv "$OUT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
sed "s|@CMDLINE@|quiet|" "$HERE/grub.cfg" > "$OUT/grub.cfg"
rm -f "$OUT/efi.vfat"
mkfs.vfat -C -n EFI -F 32 "$OUT/efi.vfat" $((EFI_MB * 1024)) >/dev/null
mmd -i "$OUT/efi.vfat" ::/EFI ::/EFI/BOOT
mcopy -i "$OUT/efi.vfat" "$OUT/BOOTX64.EFI" "$OUT/grub.cfg" "$OUT/grubenv" ::/EFI/BOOT/

step "data partition: state, model cache, uplink queue, RAUC status"
uid=$(awk -F: '$1=="edge-assistant"{print $3}' "$OUT/rootfs/etc/passwd")
gid=$(awk -F: '$1=="edge-assistant"{print $4}' "$OUT/rootfs/etc/passwd")
rm -rf "$OUT/data" && mkdir -p "$OUT/data/edge-assistant/state" "$OUT/data/edge-assistant/cache" "$OUT/data/rauc"
chown "$uid:$gid" "$OUT/data/edge-assistant/state" "$OUT/data/edge-assistant/cache"
chmod 0750 "$OUT/data/edge-assistant/state" "$OUT/data/edge-assistant/cache"
rm -f "$OUT/data.ext4"
mkfs.ext4 -q -L data -O ^orphan_file,^metadata_csum_seed -E root_owner=0:0 -d "$OUT/data" "$OUT/data.ext4" "${DATA_MB}M"

step "disk image: GPT efi | rootfs-a | rootfs-b | data"
total_mb=$(( 1 + EFI_MB + 2 * SLOT_MB + DATA_MB + 1 ))
rm -f "$OUT/disk.img"
truncate -s "${total_mb}M" "$OUT/disk.img"
sed -e "s/@EFI_MB@/$EFI_MB/" -e "s/@SLOT_MB@/$SLOT_MB/g" -e "s/@DATA_MB@/$DATA_MB/" "$HERE/layout.sfdisk" \
    | sfdisk -q "$OUT/disk.img"
put() {  # put PARTNUMBER FILE: write a filesystem image at the partition's start
    local start
    start=$(sfdisk -J "$OUT/disk.img" | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['partitiontable']['partitions'][$1-1]['start'])")
    dd if="$2" of="$OUT/disk.img" bs=1M oflag=seek_bytes seek=$((start * 512)) conv=notrunc,sparse status=none
}
put 1 "$OUT/efi.vfat"
put 2 "$OUT/rootfs.ext4"
put 4 "$OUT/data.ext4"
sfdisk -l "$OUT/disk.img"
cat > "$OUT/image.env" <<ENV
BOARD=$BOARD
COMPATIBLE=$COMPATIBLE
VERSION=$VERSION
ENV
step "done: $OUT/disk.img (${total_mb} MiB, $(du -m "$OUT/disk.img" | cut -f1) MiB allocated), version $VERSION"
