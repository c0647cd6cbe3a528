# shellcheck shell=sh
# version-floor.lib.sh: version parsing and comparison shared by rauc-pre-install.sh and
# raise-version-floor.sh (sourced, POSIX sh; installed next to them in /usr/lib/edge-assistant).
#
# Versions: PEP 440 in its canonical spelling, as pyproject.toml and build-image.sh write them:
#   N[.N...][{a|b|rc}N][.postN][.devN][+LOCAL]   e.g. 1.4.0, 1.4.0rc1, 0.1.0+20261205035722
# compared as PEP 440 does: 1.4 == 1.4.0, 1.9 < 1.10, pre- and dev-releases of 1.4.0 are below 1.4.0,
# LOCAL (the build stamp) does not move a version below its release. A floor is a plain release N[.N...].

# shellcheck disable=SC2034  # used by the scripts that source this file
VERSION_FORMAT="N[.N...][aN|bN|rcN][.postN][.devN][+LOCAL], e.g. 1.4.0 or 0.1.0+20261205035722 (PEP 440)"

# parse_version VERSION: prints "RELEASE PRE POST DEV" (PRE/POST/DEV "-" when absent), nothing when
# malformed. Release numbers have at most 9 digits each, so test(1) compares them as integers safely.
parse_version() {
    printf '%s\n' "$1" | sed -n -E \
        's/^([0-9]{1,9}(\.[0-9]{1,9})*)((a|b|rc)[0-9]{1,9})?(\.post[0-9]{1,9})?(\.dev[0-9]{1,9})?(\+[A-Za-z0-9]+([._-][A-Za-z0-9]+)*)?$/\1 -\3 -\5 -\6/p' \
        | sed 's/ -\([^ ]\)/ \1/g'
}

# cmp_release A B: prints -1, 0 or 1; missing trailing parts count as 0 (1.4 == 1.4.0).
cmp_release() {
    _a=$1 _b=$2
    while [ -n "$_a" ] || [ -n "$_b" ]; do
        _x=${_a%%.*} _y=${_b%%.*}
        case $_a in *.*) _a=${_a#*.} ;; *) _a= ;; esac
        case $_b in *.*) _b=${_b#*.} ;; *) _b= ;; esac
        # test(1) reads decimal, so leading zeros (007) are harmless, unlike $(( ))
        if [ "${_x:-0}" -lt "${_y:-0}" ]; then echo -1; return; fi
        if [ "${_x:-0}" -gt "${_y:-0}" ]; then echo 1; return; fi
    done
    echo 0
}

# below_floor VERSION FLOOR: true when the (parsed-valid) VERSION is below the release FLOOR: a lower
# release, or FLOOR's own release as a pre- or dev-release (1.4.0.post1.dev0 is above 1.4.0).
below_floor() {
    # shellcheck disable=SC2046  # split on purpose: four words of [0-9a-z.-], nothing to glob
    set -- $(parse_version "$1") "$2"
    case $(cmp_release "$1" "$5") in
        -1) return 0 ;;
        0) [ "$2" != - ] || { [ "$4" != - ] && [ "$3" = - ]; } ;;
        *) return 1 ;;
    esac
}

# read_floor FILE: prints the one release number in FILE ('#' comments and blank lines ignored);
# returns 1 with the reason on stderr when FILE is unreadable or holds anything else.
read_floor() {
    if [ ! -r "$1" ]; then
        echo "no version floor at $1" >&2
        return 1
    fi
    _f=$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$' || true)
    if [ "$(parse_version "$_f")" != "$_f - - -" ]; then
        echo "version floor '$_f' in $1 is not one release number N[.N...]" >&2
        return 1
    fi
    printf '%s\n' "$_f"
}
