# Sourced by the deploy/build-*-image.sh scripts: what each FROM scratch
# image needs to run its dynamically linked programs, and the options they
# share.
#
#   rootfs_add_libs ROOT FILE...
#
# copies every shared library `ldd` lists for the FILEs (programs or
# modules), and the dynamic loader, to the same path under ROOT, through
# symlinks (the SONAME path holds the real file).
#
#   rootfs_image_args SCRIPT HELP_LINES ARG...
#
# parses --tag TAG into $tag, prints lines 2..HELP_LINES of SCRIPT for
# -h/--help, refuses anything else (exit 2); sets $DOCKER to Debian's
# /usr/bin/docker when present unless it is set.

rootfs_add_libs() {
    local root=$1 l libs
    shift
    libs=$(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u)
    for l in $libs; do
        mkdir -p "$root$(dirname "$l")"
        cp -L "$l" "$root$l"
    done
}

rootfs_image_args() {
    local script=$1 help=$2
    shift 2
    while [ $# -gt 0 ]; do
        case "$1" in
        --tag) tag=$2; shift 2 ;;
        -h | --help) sed -n "2,${help}p" "$script" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$(basename "$script"): unknown option $1 (try --help)" >&2; exit 2 ;;
        esac
    done
    if [ -z "${DOCKER:-}" ]; then
        if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
    fi
}
