#!/bin/sh
# rauc-tryboot.sh: RAUC's custom bootloader backend for the Raspberry Pi 4/5 bootloader's tryboot A/B
# (system.conf: bootloader=custom, bootloader-custom-backend=<this>). RAUC calls
#   get-primary | set-primary SLOT | get-state SLOT | set-state SLOT good|bad | get-current
# with SLOT = A or B. The Pi has no boot counter: a new slot gets exactly one boot, the tryboot.
#   autoboot.txt [all]      boot_partition of the confirmed slot (every normal boot)
#   autoboot.txt [tryboot]  boot_partition for one boot after `reboot '0 tryboot'`
# set-primary of the other slot points [tryboot] at it and makes the next reboot a tryboot
# (/run/systemd/reboot-param, read by systemd-shutdown). If that boot never reaches mark-good (the
# health check), any later reset (the hardware watchdog, a power cycle) boots [all], the old slot.
# set-state SLOT good in the tryboot (mark-good) commits it: [all] then names SLOT.
set -eu
AUTOBOOT=${EA_AUTOBOOT:-/boot/autoboot/autoboot.txt}
STATE=${EA_TRYBOOT_STATE:-/data/rauc/tryboot.state}  # BAD_A= BAD_B= PENDING=
DT_TRYBOOT=${EA_DT_TRYBOOT:-/proc/device-tree/chosen/bootloader/tryboot}
REBOOT_PARAM=${EA_REBOOT_PARAM:-/run/systemd/reboot-param}

part_of() { case "$1" in A) echo 2 ;; B) echo 3 ;; *) echo "rauc-tryboot: slot '$1': expected A or B" >&2; exit 2 ;; esac; }
slot_of() { case "$1" in 2) echo A ;; 3) echo B ;; *) echo "rauc-tryboot: $AUTOBOOT: boot_partition=$1, expected 2 or 3" >&2; exit 1 ;; esac; }
section_value() {  # section_value SECTION: boot_partition in [SECTION] of autoboot.txt
    awk -v want="[$1]" '/^\[/{s=$0} s==want && /^boot_partition=/{split($0,a,"="); print a[2]}' "$AUTOBOOT"
}
write_autoboot() {  # write_autoboot ALLPART TRYPART: replace autoboot.txt (copy, sync, rename)
    cat > "$AUTOBOOT.new" <<TXT
# written by rauc-tryboot.sh: [all] = confirmed slot, [tryboot] = slot for one trial boot
[all]
tryboot_a_b=1
boot_partition=$1
[tryboot]
boot_partition=$2
TXT
    sync "$AUTOBOOT.new" && mv "$AUTOBOOT.new" "$AUTOBOOT" && sync "$(dirname "$AUTOBOOT")"
}
BAD_A=0; BAD_B=0; PENDING=
[ -f "$STATE" ] && . "$STATE"
save_state() { printf 'BAD_A=%s\nBAD_B=%s\nPENDING=%s\n' "$BAD_A" "$BAD_B" "$PENDING" > "$STATE.new" && mv "$STATE.new" "$STATE"; }
in_tryboot() { [ -f "$DT_TRYBOOT" ] && [ "$(od -An -tx1 "$DT_TRYBOOT" | tr -d ' \n')" = 00000001 ]; }
committed=$(slot_of "$(section_value all)")

case "${1:-}" in
    get-primary) echo "${PENDING:-$committed}" ;;
    get-current) sed -n 's/.*rauc\.slot=\([AB]\).*/\1/p' /proc/cmdline ;;
    set-primary)
        slot=$2; part=$(part_of "$slot")
        eval "BAD_$slot=0"
        if [ "$slot" = "$committed" ]; then
            PENDING=; rm -f "$REBOOT_PARAM"
        else
            write_autoboot "$(part_of "$committed")" "$part"
            PENDING=$slot
            mkdir -p "$(dirname "$REBOOT_PARAM")" && echo "0 tryboot" > "$REBOOT_PARAM"
        fi
        save_state ;;
    get-state)
        part_of "$2" >/dev/null
        if [ "$(eval echo "\$BAD_$2")" = 1 ]; then echo bad; else echo good; fi ;;
    set-state)
        slot=$2; part=$(part_of "$slot")
        case "$3" in
            good)
                eval "BAD_$slot=0"
                # the trial boot of the pending slot is healthy: make it the confirmed slot
                if [ "$slot" = "$PENDING" ] && in_tryboot; then
                    write_autoboot "$part" "$(part_of "$committed")"
                    PENDING=
                fi ;;
            bad)
                eval "BAD_$slot=1"
                if [ "$slot" = "$PENDING" ]; then PENDING=; rm -f "$REBOOT_PARAM"; fi ;;
            *) echo "rauc-tryboot: set-state $slot '$3': expected good or bad" >&2; exit 2 ;;
        esac
        save_state ;;
    *) echo "usage: rauc-tryboot.sh get-primary|set-primary SLOT|get-state SLOT|set-state SLOT good|bad|get-current" >&2; exit 2 ;;
esac
