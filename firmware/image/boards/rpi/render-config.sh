#!/bin/sh
# render-config.sh SLOT DIR: makes the boot slot SLOT (A or B) in DIR (a copy of the boot files) the
# device's: writes config.txt and cmdline.txt, and adds the CAN HAT to every Pi device tree in DIR.
# Used at build time for both boot partitions and, installed in the image, by RAUC's post-install
# handler for the boot slot an update has just written (the same boot.vfat goes to either slot: only
# these files name the slot and the HAT). CAN HAT values: $RPI_CAN_ENV, else /etc/edge-assistant/rpi-can.env
# (the device's own), else can.env beside this script; each value overridable from the environment.
# render-config.sh --values: only print the values it would use, checked, as lines of a can.env.
#
# Why not dtoverlay=: Debian's device trees (linux-image-arm64) are built without __symbols__, so the
# firmware cannot apply the Pi's overlays to them (and raspi-firmware ships none). The nodes an overlay
# would add are written with fdtput instead (device-tree-compiler):
#   /soc/gpio@7e200000/ea-spi0-pins  GPIO 9-11 as SPI0 (ALT0); chip select GPIO 8 as a GPIO (cs-gpios)
#   /soc/gpio@7e200000/ea-can0-int   the INT pin: input, pull-up (the controller drives it low)
#   /ea-can0-osc                     fixed clock: the HAT's crystal
#   /soc/spi@7e204000                status okay, and its child can@0: the controller (reg 0 = CE0)
set -eu
SLOT=${1:?usage: render-config.sh A|B DIR | --values}
[ "$SLOT" = --values ] || DIR=${2:?usage: render-config.sh A|B DIR | --values}
HERE=$(cd "$(dirname "$0")" && pwd)
for f in "${RPI_CAN_ENV:-}" /etc/edge-assistant/rpi-can.env "$HERE/can.env"; do
    if [ -n "$f" ] && [ -f "$f" ]; then ENV_FILE=$f; break; fi
done
: "${ENV_FILE:?render-config.sh: no can.env (set RPI_CAN_ENV)}"
# the file gives the defaults, the environment wins
chip=${RPI_CAN_CHIP:-}; osc=${RPI_CAN_OSCILLATOR:-}; irq=${RPI_CAN_INTERRUPT:-}; spi=${RPI_CAN_SPI_HZ:-}
. "$ENV_FILE"
RPI_CAN_CHIP=${chip:-$RPI_CAN_CHIP}; RPI_CAN_OSCILLATOR=${osc:-$RPI_CAN_OSCILLATOR}
RPI_CAN_INTERRUPT=${irq:-$RPI_CAN_INTERRUPT}; RPI_CAN_SPI_HZ=${spi:-$RPI_CAN_SPI_HZ}

die() { echo "render-config.sh: $ENV_FILE: $*" >&2; exit 2; }
is_int() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; }
case "$SLOT" in A) label=rootfs-a ;; B) label=rootfs-b ;; --values) ;; *) echo "render-config.sh: slot '$SLOT': expected A or B" >&2; exit 2 ;; esac
is_int "$RPI_CAN_OSCILLATOR" || die "RPI_CAN_OSCILLATOR='$RPI_CAN_OSCILLATOR': expected the crystal in Hz, e.g. 16000000"
is_int "$RPI_CAN_INTERRUPT" && [ "$RPI_CAN_INTERRUPT" -le 27 ] \
    || die "RPI_CAN_INTERRUPT='$RPI_CAN_INTERRUPT': expected a BCM GPIO number 0..27 of the header"
is_int "$RPI_CAN_SPI_HZ" && [ "$RPI_CAN_SPI_HZ" -ge 100000 ] \
    || die "RPI_CAN_SPI_HZ='$RPI_CAN_SPI_HZ': expected the SPI clock in Hz, e.g. 10000000"
case "$RPI_CAN_CHIP" in
    mcp2515)
        compatible=microchip,mcp2515
        case "$RPI_CAN_OSCILLATOR" in 8000000|12000000|16000000|20000000) ;;
            *) die "RPI_CAN_OSCILLATOR=$RPI_CAN_OSCILLATOR: an MCP2515 runs from an 8, 12, 16 or 20 MHz crystal" ;; esac
        [ "$RPI_CAN_SPI_HZ" -le 10000000 ] || die "RPI_CAN_SPI_HZ=$RPI_CAN_SPI_HZ: the MCP2515's SPI is at most 10 MHz"
        ;;
    mcp2518fd)
        compatible=microchip,mcp2518fd
        case "$RPI_CAN_OSCILLATOR" in 4000000|20000000|40000000) ;;
            *) die "RPI_CAN_OSCILLATOR=$RPI_CAN_OSCILLATOR: an MCP2518FD runs from a 4, 20 or 40 MHz clock" ;; esac
        [ "$RPI_CAN_SPI_HZ" -le 20000000 ] || die "RPI_CAN_SPI_HZ=$RPI_CAN_SPI_HZ: the MCP2518FD's SPI is at most 20 MHz"
        ;;
    *) die "RPI_CAN_CHIP='$RPI_CAN_CHIP': expected mcp2515 or mcp2518fd" ;;
esac
hat="$RPI_CAN_CHIP, crystal $RPI_CAN_OSCILLATOR Hz, INT on GPIO $RPI_CAN_INTERRUPT, SPI0 CE0 at $RPI_CAN_SPI_HZ Hz"
if [ "$SLOT" = --values ]; then
    printf 'RPI_CAN_CHIP=%s\nRPI_CAN_OSCILLATOR=%s\nRPI_CAN_INTERRUPT=%s\nRPI_CAN_SPI_HZ=%s\n' \
        "$RPI_CAN_CHIP" "$RPI_CAN_OSCILLATOR" "$RPI_CAN_INTERRUPT" "$RPI_CAN_SPI_HZ"
    exit 0
fi

add_can_hat() {  # add_can_hat DTB: the CAN HAT's nodes into one device tree (a fresh copy: refuses a second time)
    dtb=$1
    fdtget "$dtb" /soc/spi@7e204000/can@0 compatible >/dev/null 2>&1 \
        && { echo "render-config.sh: $dtb: already has a CAN controller at /soc/spi@7e204000/can@0 (expected a fresh copy)" >&2; exit 1; }
    gpio=$(fdtget -t u "$dtb" /soc/gpio@7e200000 phandle) \
        || { echo "render-config.sh: $dtb: /soc/gpio@7e200000 has no phandle (not a Raspberry Pi device tree?)" >&2; exit 1; }
    # new phandles above the largest in the tree
    top=$(dtc -q -I dtb -O dts "$dtb" | sed -n 's/.*[^-]phandle = <\(0x[0-9a-f]*\)>;.*/\1/p' \
        | while read -r h; do printf '%d\n' "$h"; done | sort -n | tail -1)
    pins=$((top + 1)); int=$((top + 2)); osc=$((top + 3))
    g=/soc/gpio@7e200000
    fdtput -c "$dtb" $g/ea-spi0-pins $g/ea-can0-int /ea-can0-osc /soc/spi@7e204000/can@0
    fdtput -t u "$dtb" $g/ea-spi0-pins brcm,pins 9 10 11
    fdtput -t u "$dtb" $g/ea-spi0-pins brcm,function 4   # ALT0: SPI0 MISO, MOSI, SCLK
    fdtput -t u "$dtb" $g/ea-spi0-pins phandle $pins
    fdtput -t u "$dtb" $g/ea-can0-int brcm,pins "$RPI_CAN_INTERRUPT"
    fdtput -t u "$dtb" $g/ea-can0-int brcm,function 0    # input
    fdtput -t u "$dtb" $g/ea-can0-int brcm,pull 2        # pull-up
    fdtput -t u "$dtb" $g/ea-can0-int phandle $int
    fdtput -t s "$dtb" /ea-can0-osc compatible fixed-clock
    fdtput -t u "$dtb" /ea-can0-osc '#clock-cells' 0
    fdtput -t u "$dtb" /ea-can0-osc clock-frequency "$RPI_CAN_OSCILLATOR"
    fdtput -t u "$dtb" /ea-can0-osc phandle $osc
    fdtput -t s "$dtb" /soc/spi@7e204000 status okay
    fdtput -t s "$dtb" /soc/spi@7e204000 pinctrl-names default
    fdtput -t u "$dtb" /soc/spi@7e204000 pinctrl-0 $pins
    fdtput -t u "$dtb" /soc/spi@7e204000 cs-gpios "$gpio" 8 1   # CE0 = GPIO 8, active low
    c=/soc/spi@7e204000/can@0
    fdtput -t s "$dtb" $c compatible "$compatible"
    fdtput -t u "$dtb" $c reg 0
    fdtput -t u "$dtb" $c spi-max-frequency "$RPI_CAN_SPI_HZ"
    fdtput -t u "$dtb" $c clocks $osc
    fdtput -t u "$dtb" $c interrupt-parent "$gpio"
    fdtput -t u "$dtb" $c interrupts "$RPI_CAN_INTERRUPT" 8   # IRQ_TYPE_LEVEL_LOW
    fdtput -t s "$dtb" $c pinctrl-names default
    fdtput -t u "$dtb" $c pinctrl-0 $int
}

mkdir -p "$DIR"
found=0
for dtb in "$DIR"/bcm2711-*.dtb "$DIR"/bcm2837-*.dtb; do
    [ -f "$dtb" ] || continue
    fdtget "$dtb" /soc/spi@7e204000 compatible >/dev/null 2>&1 || continue  # no SPI0 there: not a Pi 3/4 tree
    add_can_hat "$dtb"
    found=$((found + 1))
done
[ "$found" -gt 0 ] || [ "${RPI_ALLOW_NO_DTB:-0}" = 1 ] \
    || { echo "render-config.sh: $DIR: no Raspberry Pi device tree (bcm2711-*.dtb) to add the CAN HAT to" >&2; exit 1; }
sed "s|@CAN_HAT@|# CAN HAT ($found device trees): $hat|" "$HERE/config.txt.in" > "$DIR/config.txt.tmp"
# Debian's kernel names the Pi 4's mini UART ttyS1 (Pi 5: the debug UART ttyAMA10); tty0 for HDMI
echo "console=ttyS1,115200 console=tty0 root=PARTLABEL=$label rootfstype=ext4 rw rootwait rauc.slot=$SLOT quiet" \
    > "$DIR/cmdline.txt.tmp"
mv "$DIR/config.txt.tmp" "$DIR/config.txt"
mv "$DIR/cmdline.txt.tmp" "$DIR/cmdline.txt"
