#!/bin/sh
# render-config.sh SLOT DIR: writes config.txt and cmdline.txt of boot slot SLOT (A or B) into DIR.
# Used at build time for both boot partitions and, installed in the image, by RAUC's post-install
# handler for the boot slot an update has just written (the same boot.vfat goes to either slot, only
# these two files name the slot). CAN HAT values: $RPI_CAN_ENV, else /etc/edge-assistant/rpi-can.env
# (the device's own), else can.env beside this script; each value overridable from the environment.
set -eu
SLOT=${1:?usage: render-config.sh A|B DIR}
DIR=${2:?usage: render-config.sh A|B DIR}
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
case "$SLOT" in A) label=rootfs-a ;; B) label=rootfs-b ;; *) echo "render-config.sh: slot '$SLOT': expected A or B" >&2; exit 2 ;; esac
is_int "$RPI_CAN_OSCILLATOR" || die "RPI_CAN_OSCILLATOR='$RPI_CAN_OSCILLATOR': expected the crystal in Hz, e.g. 16000000"
is_int "$RPI_CAN_INTERRUPT" && [ "$RPI_CAN_INTERRUPT" -le 27 ] \
    || die "RPI_CAN_INTERRUPT='$RPI_CAN_INTERRUPT': expected a BCM GPIO number 0..27 of the header"
is_int "$RPI_CAN_SPI_HZ" && [ "$RPI_CAN_SPI_HZ" -ge 100000 ] \
    || die "RPI_CAN_SPI_HZ='$RPI_CAN_SPI_HZ': expected the SPI clock in Hz, e.g. 10000000"
case "$RPI_CAN_CHIP" in
    mcp2515)
        case "$RPI_CAN_OSCILLATOR" in 8000000|12000000|16000000|20000000) ;;
            *) die "RPI_CAN_OSCILLATOR=$RPI_CAN_OSCILLATOR: an MCP2515 runs from an 8, 12, 16 or 20 MHz crystal" ;; esac
        [ "$RPI_CAN_SPI_HZ" -le 10000000 ] || die "RPI_CAN_SPI_HZ=$RPI_CAN_SPI_HZ: the MCP2515's SPI is at most 10 MHz"
        overlay="dtoverlay=mcp2515-can0,oscillator=$RPI_CAN_OSCILLATOR,interrupt=$RPI_CAN_INTERRUPT,spimaxfrequency=$RPI_CAN_SPI_HZ" ;;
    mcp2518fd)
        case "$RPI_CAN_OSCILLATOR" in 4000000|20000000|40000000) ;;
            *) die "RPI_CAN_OSCILLATOR=$RPI_CAN_OSCILLATOR: an MCP2518FD runs from a 4, 20 or 40 MHz clock" ;; esac
        [ "$RPI_CAN_SPI_HZ" -le 20000000 ] || die "RPI_CAN_SPI_HZ=$RPI_CAN_SPI_HZ: the MCP2518FD's SPI is at most 20 MHz"
        overlay="dtoverlay=mcp251xfd,spi0-0,oscillator=$RPI_CAN_OSCILLATOR,interrupt=$RPI_CAN_INTERRUPT,speed=$RPI_CAN_SPI_HZ" ;;
    *) die "RPI_CAN_CHIP='$RPI_CAN_CHIP': expected mcp2515 or mcp2518fd" ;;
esac
mkdir -p "$DIR"
sed "s|@CAN_OVERLAY@|$overlay|" "$HERE/config.txt.in" > "$DIR/config.txt.tmp"
# Debian's kernel names the Pi 4's mini UART ttyS1 (Pi 5: the debug UART ttyAMA10); tty0 for HDMI
echo "console=ttyS1,115200 console=tty0 root=PARTLABEL=$label rootfstype=ext4 rw rootwait rauc.slot=$SLOT quiet" \
    > "$DIR/cmdline.txt.tmp"
mv "$DIR/config.txt.tmp" "$DIR/config.txt"
mv "$DIR/cmdline.txt.tmp" "$DIR/cmdline.txt"
