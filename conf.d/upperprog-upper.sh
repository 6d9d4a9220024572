#!/bin/sh
# UPPER program for upperprog.conf: a fresh upper layer for every boot.
#
# overlay-boot runs this with ACTION=setup before mounting the subhost's root
# (it must print the upper directory's pathname on its first output line) and
# with ACTION=teardown when the subhost has ended. CONFIG holds the pathname
# of the config file, so the script finds its subhost's files from there.
set -eu

base="$(dirname "$CONFIG")/upperprog"
upper="$base/fresh-root"

case "${ACTION:-}" in
    setup)
        # Start from nothing: what the last run wrote is gone.
        rm -rf "$upper"
        mkdir -p "$upper"
        echo "$upper"
        ;;
    teardown)
        rm -rf "$upper"
        ;;
    *)
        echo "upperprog-upper.sh: ACTION must be setup or teardown, not '${ACTION:-}'" >&2
        exit 2
        ;;
esac
