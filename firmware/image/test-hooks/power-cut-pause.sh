#!/bin/sh
# RAUC bundle hook of the test-only bundle-power-cut.raucb (build-bundle.sh, TEST_BUNDLES=1): after the
# slot is written (slot-post-install, which RAUC runs before it switches the bootloader's primary) it
# leaves a marker and pauses, so the system test can cut the power in exactly that window
# (tests/system/test_power_cut.py). Never part of a release bundle.
case "$1" in
    slot-post-install)
        echo "power-cut-pause: $RAUC_SLOT_NAME ($RAUC_SLOT_BOOTNAME) written, pausing before mark-active"
        echo "$RAUC_SLOT_BOOTNAME" > /run/power-cut-pause.marker
        sleep "${POWER_CUT_PAUSE_S:-1800}"
        ;;
esac
exit 0
