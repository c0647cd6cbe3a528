#!/bin/sh
# RAUC pre-install handler of the edge-assistant image (/etc/rauc/system.conf, [handlers] pre-install):
# refuses a bundle whose version is below the version floor, before anything is written to a slot.
# Exit 0 = install, 1 = refused (the reason on stderr, which RAUC logs in rauc.service's journal;
# `rauc install` itself reports "Pre-install handler error: ... exited with code 1").
#
# The floor is the higher of
#   /usr/lib/edge-assistant/version-floor   shipped in this root filesystem (firmware/image/version-floor)
#   /data/edge-assistant/version-floor      the highest floor of any release confirmed on this device
#                                           (raise-version-floor.sh after mark-good; absent at first)
# so a device cannot step down through an older release's lower floor. Versions and their order:
# version-floor.lib.sh (PEP 440).
#
# RAUC runs it with the bundle mounted at RAUC_BUNDLE_MOUNT_POINT (RAUC_UPDATE_SOURCE, its deprecated
# name, too; 1.8 sets both). RAUC gives install hooks, but not system handlers, RAUC_MF_VERSION: it is
# used when set, else the version is read from the manifest inside the mounted bundle (dm-verity
# checked, so it is the signed one). The arguments are ignored (RAUC 1.8 passes one empty argument:
# the bundle's handler args). Environment for tests and other layouts: EA_VERSION_FLOOR_FILE and
# EA_STORED_FLOOR_FILE (the two files above; an empty EA_STORED_FLOOR_FILE means none).
set -eu
. "$(dirname "$0")/version-floor.lib.sh"

SHIPPED=${EA_VERSION_FLOOR_FILE:-/usr/lib/edge-assistant/version-floor}
STORED=${EA_STORED_FLOOR_FILE-/data/edge-assistant/version-floor}
ME="edge-assistant pre-install"

refuse() { echo "$ME: $*" >&2; exit 1; }

# --- the floor: shipped, raised by the stored one
floor=$(read_floor "$SHIPPED" 2>&1) || refuse "$floor (broken image): refusing every bundle"
from=$SHIPPED
if [ -n "$STORED" ] && [ -e "$STORED" ]; then
    stored=$(read_floor "$STORED" 2>&1) || refuse "$stored: refusing every bundle (raise-version-floor.sh rewrites it after the next mark-good)"
    if [ "$(cmp_release "$stored" "$floor")" = 1 ]; then
        floor=$stored from=$STORED
    fi
fi

# --- the bundle's version
mnt=${RAUC_BUNDLE_MOUNT_POINT:-${RAUC_UPDATE_SOURCE:-}}
if [ -n "${RAUC_MF_VERSION:-}" ]; then
    version=$RAUC_MF_VERSION where="RAUC_MF_VERSION"
else
    [ -n "$mnt" ] || refuse "neither RAUC_MF_VERSION nor RAUC_BUNDLE_MOUNT_POINT is set (not run by RAUC?)"
    manifest=$mnt/manifest.raucm
    [ -r "$manifest" ] || refuse "cannot read the bundle's manifest $manifest"
    # the key version= of the [update] section (GKeyFile: spaces around '=' allowed)
    version=$(awk '/^[[:space:]]*\[/ { sec = $0; gsub(/[[:space:]]/, "", sec); next }
                   sec == "[update]" && /^[[:space:]]*version[[:space:]]*=/ {
                       sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); print; exit }' "$manifest")
    where="$manifest [update] version"
    [ -n "$version" ] || refuse "the bundle has no version ($where is missing or empty); expected $VERSION_FORMAT"
fi
case $version in *"
"*) refuse "bundle version ($where) spans several lines; expected $VERSION_FORMAT" ;; esac
[ -n "$(parse_version "$version")" ] ||
    refuse "bundle version '$version' ($where) is not a release version; expected $VERSION_FORMAT"

# --- compare
if below_floor "$version" "$floor"; then
    refuse "bundle version $version is below the version floor $floor ($from): downgrades below the floor are refused"
fi
echo "$ME: bundle version $version is at or above the version floor $floor ($from)" >&2
exit 0
