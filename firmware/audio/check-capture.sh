#!/bin/sh
# check-capture.sh: list ALSA capture devices and check that one delivers 16 kHz mono audio.
#
#   check-capture.sh [-D PCM] [-s SECONDS] [-o FILE.wav] [-l]
#
#   -D PCM      the device to test (default: ea_mic from firmware/audio/asound.conf)
#   -s SECONDS  how long to record (default 2)
#   -o FILE     keep the recording here (default: a temporary file, removed)
#   -l          only list devices, record nothing
#
# Exit status: 0 ok, 1 no capture device or recording failed, 2 usage or missing tool,
# 3 recorded only digital silence (muted mic, wrong I2S slot, or a mixer route not set on Jetson).
# Needs alsa-utils (arecord). POSIX sh: runs on Raspberry Pi OS, Debian and Jetson Linux (Ubuntu).
set -eu

PCM=ea_mic
PCM_GIVEN=0
SECONDS_=2
OUT=
LIST_ONLY=0
RATE=16000

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while getopts "D:s:o:lh" opt; do
    case "$opt" in
        D) PCM=$OPTARG; PCM_GIVEN=1 ;;
        s) SECONDS_=$OPTARG ;;
        o) OUT=$OPTARG ;;
        l) LIST_ONLY=1 ;;
        *) usage ;;
    esac
done
case "$SECONDS_" in
    ''|*[!0-9]*|0) echo "check-capture: -s $SECONDS_: expected a whole number of seconds >= 1" >&2; exit 2 ;;
esac

if ! command -v arecord >/dev/null 2>&1; then
    echo "check-capture: arecord not found; install it with: sudo apt-get install alsa-utils" >&2
    exit 2
fi

echo "== capture hardware (arecord -l)"
HW=$(arecord -l 2>/dev/null | grep '^card [0-9]' || true)
if [ -z "$HW" ]; then
    echo "check-capture: no capture devices found: plug in the USB microphone, or enable the I2S" \
         "overlay (see firmware/README.md) and reboot" >&2
    # A PCM named with -D may be a software one (file/null plugin); try it anyway.
    [ "$PCM_GIVEN" -eq 1 ] && [ "$LIST_ONLY" -eq 0 ] || exit 1
fi
[ -n "$HW" ] && echo "$HW"

echo "== what each device supports"
[ -n "$HW" ] && echo "$HW" | while IFS= read -r line; do
    card=$(echo "$line" | sed -n 's/^card \([0-9]*\):.*/\1/p')
    dev=$(echo "$line" | sed -n 's/.*, device \([0-9]*\):.*/\1/p')
    params=$(arecord -D "hw:$card,$dev" --dump-hw-params -d 1 /dev/null 2>&1 </dev/null || true)
    fmt=$(echo "$params" | sed -n 's/^FORMAT: *//p')
    ch=$(echo "$params" | sed -n 's/^CHANNELS: *//p')
    rate=$(echo "$params" | sed -n 's/^RATE: *//p')
    echo "hw:$card,$dev  formats: ${fmt:-?}  channels: ${ch:-?}  rates: ${rate:-?}"
done

echo "== edge-assistant PCMs (arecord -L)"
arecord -L 2>/dev/null | grep '^ea_' || echo "(none: install firmware/audio/asound.conf as /etc/asound.conf)"

[ "$LIST_ONLY" -eq 1 ] && exit 0

TMP=
if [ -z "$OUT" ]; then
    TMP=$(mktemp /tmp/check-capture.XXXXXX)
    OUT=$TMP
fi
cleanup() { if [ -n "$TMP" ]; then rm -f "$TMP"; fi; }
trap cleanup EXIT INT TERM

echo "== recording $SECONDS_ s from $PCM at $RATE Hz mono S16_LE"
if ! arecord -q -D "$PCM" -f S16_LE -r "$RATE" -c 1 -t wav -d "$SECONDS_" "$OUT" </dev/null; then
    echo "check-capture: recording from $PCM failed (see the ALSA message above)" >&2
    exit 1
fi

# A canonical WAV header is 44 bytes; allow 5 % short for the stream start-up.
size=$(wc -c <"$OUT")
want=$((RATE * 2 * SECONDS_))
got=$((size - 44))
if [ "$got" -lt $((want * 95 / 100)) ]; then
    echo "check-capture: got $got bytes of audio, expected about $want ($SECONDS_ s at $RATE Hz)" >&2
    exit 1
fi
if cmp -s -i 44 -n "$got" "$OUT" /dev/zero; then
    echo "check-capture: $PCM delivered only zeros: unmute the mic (alsamixer -c CARD, F4)," \
         "check the I2S L/R slot, or set the capture route (Jetson: ADMAIF mux)" >&2
    exit 3
fi
echo "OK: $PCM delivered $got bytes = $((got / 2)) samples in $SECONDS_ s (16 kHz mono S16_LE)"
