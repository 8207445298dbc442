#!/bin/sh
# Checks what scripts/dist.sh wrote to dist/, the way a user meets it:
#   - SHA256SUMS matches both files;
#   - the .deb lists the binary and the unit; it installs with dpkg, leaves the unit
#     pointing at /usr/bin and accepted by `systemd-analyze verify`, the service enabled
#     (and running, where systemd runs), the settings file created root-only from the
#     template, the README in /usr/share/doc; installing over it without a terminal keeps
#     an edited settings file; remove keeps the database and settings, purge deletes them
#     and leaves nothing (the life under a real systemd: scripts/check-systemd.sh);
#   - the portable binary needs no glibc symbol newer than 2.28;
#   - both binaries answer --version.
# Needs root (dpkg -i). Refuses to run where chatrace-relay is already installed, so it
# never touches a real installation.
set -eu
cd "$(dirname "$0")/.."

fail() { echo "check-dist: FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb=dist/chatrace-relay_${version}_amd64.deb
tarball=dist/chatrace-relay-$version-x86_64-linux.tar.gz
expected_version="chatrace-relay $version"
[ -f "$deb" ] || fail "$deb is missing (run scripts/dist.sh)"
[ -f "$tarball" ] || fail "$tarball is missing (run scripts/dist.sh)"
[ "$(id -u)" = 0 ] || fail "run as root: the .deb is installed and purged"
status=$(dpkg-query -W -f '${Status}' chatrace-relay 2>/dev/null || true)
case "$status" in
    "" | *not-installed) ;;
    *) fail "chatrace-relay is on this machine ($status); this check installs and purges it" ;;
esac
for path in /var/lib/chatrace-relay /var/lib/private/chatrace-relay; do
    if [ -e "$path" ] || [ -L "$path" ]; then
        fail "$path exists; this check would delete it when it purges the package"
    fi
done

(cd dist && sha256sum --check --strict SHA256SUMS) || fail "SHA256SUMS does not match"
ok "SHA256SUMS"

# --- the portable binary
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
dir=$work/chatrace-relay-$version-x86_64-linux
for f in chatrace-relay chatrace-relay.service README.md chatrace-relay.default; do
    [ -f "$dir/$f" ] || fail "$tarball has no $f"
done
[ -x "$dir/chatrace-relay" ] || fail "the binary in $tarball is not executable"
got=$("$dir/chatrace-relay" --version)
[ "$got" = "$expected_version" ] || fail "tar.gz binary --version: '$got'"
ok "tar.gz: binary, unit, README; --version says '$got'"

newest=$(objdump -T "$dir/chatrace-relay" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
    sort -u -V | tail -n 1)
[ -n "$newest" ] || fail "objdump -T found no glibc symbol versions"
if [ "$(printf '%s\n2.28\n' "$newest" | sort -V | tail -n 1)" != 2.28 ]; then
    objdump -T "$dir/chatrace-relay" | grep -E "GLIBC_$newest\b" >&2 || true
    fail "the portable binary needs glibc $newest (at most 2.28 allowed)"
fi
ok "tar.gz binary needs glibc $newest at most (limit 2.28)"

# --- the .deb: contents
listing=$(dpkg-deb -c "$deb")
echo "$listing" | grep -Eq ' (\./)?usr/bin/chatrace-relay$' || fail "the .deb has no /usr/bin/chatrace-relay"
unit_path=$(echo "$listing" | grep -Eo ' (\./)?(usr/)?lib/systemd/system/chatrace-relay\.service$' |
    sed 's|^ \.\{0,1\}/\{0,1\}|/|')
[ -n "$unit_path" ] || fail "the .deb has no systemd unit"
echo "$listing" | grep -Eq ' (\./)?usr/share/doc/chatrace-relay/README.md$' || fail "the .deb has no README"
echo "$listing" | grep -Eq ' (\./)?usr/share/chatrace-relay/chatrace-relay.default$' ||
    fail "the .deb has no settings template /usr/share/chatrace-relay/chatrace-relay.default"
if echo "$listing" | grep -Eq ' (\./)?etc/'; then fail "the .deb ships files in /etc: $(echo "$listing" | grep ' \./etc/')"; fi
if dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q conffiles; then
    fail "the .deb has conffiles: an upgrade over an edited one asks a question"
fi
ok "the .deb lists /usr/bin/chatrace-relay, $unit_path, the README and the settings template; no conffiles"
depends=$(dpkg-deb -f "$deb" Depends)
libc_min=$(echo "$depends" | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
[ -n "$libc_min" ] || fail "Depends names no libc6 version: '$depends'"
dpkg --compare-versions "$libc_min" ge "$newest" || fail "Depends allows libc6 $libc_min, the binary needs $newest"
dpkg --compare-versions "$libc_min" le 2.28 || fail "Depends asks for libc6 $libc_min, more than the 2.28 the binary needs"
ok "Depends: $depends"

# --- install
dpkg -i "$deb" < /dev/null || fail "dpkg -i"
got=$(/usr/bin/chatrace-relay --version)
[ "$got" = "$expected_version" ] || fail "installed binary --version: '$got'"
ok "installed; /usr/bin/chatrace-relay --version says '$got'"
cmp -s /usr/bin/chatrace-relay "$dir/chatrace-relay" || fail "the .deb and the tar.gz hold different binaries"
ok "the .deb and the tar.gz hold the same binary"
grep -q '^ExecStart=/usr/bin/chatrace-relay serve ' "$unit_path" || fail "ExecStart does not point at /usr/bin"
systemd-analyze verify "$unit_path" || fail "systemd-analyze verify $unit_path"
ok "systemd-analyze verify accepts $unit_path (ExecStart=/usr/bin/chatrace-relay)"
[ -L /etc/systemd/system/multi-user.target.wants/chatrace-relay.service ] || fail "the service is not enabled"
ok "the service is enabled"
[ -f /etc/default/chatrace-relay ] || fail "postinst created no /etc/default/chatrace-relay"
[ "$(stat -c %a /etc/default/chatrace-relay)" = 600 ] || fail "/etc/default/chatrace-relay is not mode 600"
[ -f /usr/share/doc/chatrace-relay/README.md ] || fail "no README in /usr/share/doc"
ok "/etc/default/chatrace-relay is root-only; README in /usr/share/doc/chatrace-relay"

state=/var/lib/private/chatrace-relay
if [ -d /run/systemd/system ]; then
    # systemd runs here: the package must have started the service on its defaults.
    i=0
    until systemctl is-active --quiet chatrace-relay; do
        i=$((i + 1))
        [ $i -lt 50 ] || { systemctl status chatrace-relay >&2 || true; fail "the service did not start"; }
        sleep 0.2
    done
    ok "systemd started the service"
    i=0
    until [ -f "$state/chatrace-relay.db" ]; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "the service created no database in $state"; sleep 0.2
    done
else
    echo "note: systemd is not running here: the service was enabled, not started;"
    echo "      the state directory is laid out by hand the way systemd does it"
    [ -d /var/lib/private ] || made_private=yes
    install -d -m 700 "$state"
    ln -sfn private/chatrace-relay /var/lib/chatrace-relay
    # What the service does on its first start: `serve` creates the database (admin-token
    # refuses to, so that a mistyped path never makes a database whose token signs nothing).
    /usr/bin/chatrace-relay serve --listen 127.0.0.1:0 \
        --db /var/lib/chatrace-relay/chatrace-relay.db >/dev/null 2>&1 &
    serve_pid=$!
    i=0
    until [ -f "$state/chatrace-relay.db" ]; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "serve created no database in $state"; sleep 0.2
    done
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
    /usr/bin/chatrace-relay admin-token --db /var/lib/chatrace-relay/chatrace-relay.db >/dev/null ||
        fail "admin-token cannot read the database serve created"
fi
[ -f /var/lib/chatrace-relay/chatrace-relay.db ] || fail "no database under /var/lib/chatrace-relay"

# --- an upgrade (here: the same version again), without a terminal, keeps the settings
echo CHATRACE_RELAY_PUBLIC_URL=https://relay.example.com >> /etc/default/chatrace-relay
dpkg -i "$deb" < /dev/null || fail "dpkg -i over the installed package"
grep -q '^CHATRACE_RELAY_PUBLIC_URL=https://relay.example.com$' /etc/default/chatrace-relay ||
    fail "reinstalling lost the edit in /etc/default/chatrace-relay"
[ -f "$state/chatrace-relay.db" ] || fail "reinstalling lost the database"
ok "installing over it keeps the settings and the database"

# --- remove keeps the data, purge deletes it
dpkg -r chatrace-relay || fail "dpkg -r"
[ ! -e /usr/bin/chatrace-relay ] || fail "dpkg -r left /usr/bin/chatrace-relay"
[ -f "$state/chatrace-relay.db" ] || fail "dpkg -r deleted the database"
grep -q '^CHATRACE_RELAY_PUBLIC_URL=' /etc/default/chatrace-relay || fail "dpkg -r deleted the settings (kept until purge)"
ok "dpkg -r removed the binary and kept the database and settings"
dpkg -P chatrace-relay || fail "dpkg -P"
for path in "$state" /var/lib/chatrace-relay /etc/default/chatrace-relay "$unit_path" \
    /etc/systemd/system/multi-user.target.wants/chatrace-relay.service \
    /usr/share/doc/chatrace-relay; do
    if [ -e "$path" ] || [ -L "$path" ]; then fail "dpkg -P left $path"; fi
done
case "$(dpkg-query -W -f '${Status}' chatrace-relay 2>/dev/null || true)" in
    "" | *not-installed) ;;
    *) fail "dpkg still lists chatrace-relay after purge" ;;
esac
ok "dpkg -P deleted the database, the settings, the unit and its enablement"
if [ "${made_private:-}" = yes ]; then rmdir /var/lib/private; fi
echo "check-dist: all checks passed"
