#!/bin/sh
# Installs what aigc-run needs to build and test on Debian 12, when it is missing.
# Runs apt-get only when a package is absent, so a second run is quick and needs no
# network. Needs root (or sudo) for the install itself.
set -eu

# Build: compiler, pkg-config, and the libraries the Makefile asks pkg-config about.
# The pthread flavour of OpenBLAS: its thread count is set by the runtime (--threads).
# oneDNN (libdnnl-dev) is the faster of the two compute libraries (--backend), OpenBLAS
# the other one and LAPACK's.
# Test: prove (perl). Data-parallel training and its test (tests/cli/mpi.t): Open MPI's
# mpirun and libmpi (openmpi-bin brings libopenmpi3), which aigc-run loads at run time
# under mpirun only, so the build needs no MPI headers. Data for the full-size runs:
# Fashion-MNIST, and the fortune cookies of `fortunes` (/usr/share/games/fortunes) for
# specs/char-gpt.yaml. `make fuzz` alone needs clang and its libFuzzer runtime
# (--with-fuzz); the report's browser test, Chromium (--with-browser).
PKGS="build-essential pkg-config libyaml-dev liblua5.4-dev libopenblas-pthread-dev
libopenblas0-pthread libdnnl-dev zlib1g-dev libpng-dev perl openmpi-bin"
for opt in "$@"; do
    case "$opt" in
    --with-data) PKGS="$PKGS dataset-fashion-mnist fortunes" ;;
    --with-fuzz) PKGS="$PKGS clang libclang-rt-14-dev" ;;
    --with-browser) PKGS="$PKGS chromium" ;;
    *) echo "usage: install-deps.sh [--with-data] [--with-fuzz] [--with-browser]" >&2; exit 2 ;;
    esac
done

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
