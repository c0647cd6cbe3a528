#!/bin/sh
# raise-version-floor.sh: after mark-good has confirmed the running release, raise the device's stored
# version floor (/data/edge-assistant/version-floor) to this release's shipped floor
# (/usr/lib/edge-assistant/version-floor). Never lowers it: like Android's rollback index, the stored
# floor only grows, so rauc-pre-install.sh refuses what any confirmed release refused, even after a
# downgrade to a release whose own floor is lower. Raised only on confirmation, so a new release that
# never becomes healthy cannot lock the device out of reinstalling the one it falls back to.
#
# Written atomically (temporary file, fsync, rename, fsync of the directory): a power cut leaves the
# old or the new floor. Exit 0 = raised or already as high; 1 = not written (reason on stderr).
# Environment for tests and other layouts: EA_VERSION_FLOOR_FILE, EA_STORED_FLOOR_FILE.
set -eu
. "$(dirname "$0")/version-floor.lib.sh"

SHIPPED=${EA_VERSION_FLOOR_FILE:-/usr/lib/edge-assistant/version-floor}
STORED=${EA_STORED_FLOOR_FILE:-/data/edge-assistant/version-floor}
ME="edge-assistant raise-version-floor"

shipped=$(read_floor "$SHIPPED" 2>&1) || { echo "$ME: $shipped" >&2; exit 1; }
if [ -e "$STORED" ]; then
    if stored=$(read_floor "$STORED" 2>&1); then
        if [ "$(cmp_release "$stored" "$shipped")" != -1 ]; then
            echo "$ME: $STORED stays at $stored (this release's floor: $shipped)"
            exit 0
        fi
    else
        # unreadable or torn by something other than this script: the handler refuses every bundle
        # until it is valid again, and the running release has just been confirmed good
        echo "$ME: replacing a broken stored floor: $stored" >&2
    fi
fi
dir=$(dirname "$STORED")
[ -d "$dir" ] || { echo "$ME: no directory $dir (data partition not mounted?)" >&2; exit 1; }
tmp=$STORED.tmp.$$
trap 'rm -f "$tmp"' EXIT
printf '# raised by raise-version-floor.sh on %s; never lowered\n%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$shipped" > "$tmp"
sync "$tmp"
mv -f "$tmp" "$STORED"
sync "$dir"
echo "$ME: $STORED raised to $shipped"
