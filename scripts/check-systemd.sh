#!/bin/sh
# The .deb's whole life under a real systemd (PID 1), on Debian 12 and Debian 11, in a
# throw-away system each (with-systemd.sh: systemd-nspawn on a debootstrapped tree, no
# network):
#   - install without a terminal: the unit passes `systemd-analyze verify` with no option
#     unknown to that systemd, the service is active and answers as soon as dpkg returns
#     (Type=notify), the settings file is created root-only;
#   - a webhook is stored; the journal has the relay's lines without a second timestamp;
#   - the sign-in page names /var/lib/chatrace-relay, not systemd's private path;
#   - SIGKILL: systemd restarts the relay, the message is still there;
#   - `systemctl restart` is answered at once, three times;
#   - with LoadCredential=admin_token, the credential's token signs in and `admin-token`
#     names the credential instead of printing the database's token;
#   - a newer package (the same build, version +check1, a changed settings template) over
#     a user-edited settings file, without a terminal: no question, the edit kept and in
#     force, the service restarted;
#   - remove keeps the database and the settings; purge deletes them.
# Needs root and scripts/dist.sh's dist/. with-systemd.sh is the project's tool beside the
# repository (../shared/tools, or WITH_SYSTEMD=path); where it is absent this check is
# skipped with a notice. First use of a release debootstraps it (1-2 minutes); after that
# a release takes about 15 s here.
#   sudo scripts/check-systemd.sh [SUITE...]      (default: bookworm bullseye)
set -eu

fail() { echo "check-systemd: FAIL: $*" >&2; exit 1; }

if [ "${1:-}" = --inside ]; then
    inside=yes
else
    inside=no
fi

# ---------------------------------------------------------------- on the host
if [ "$inside" = no ]; then
    cd "$(dirname "$0")/.."
    tool=${WITH_SYSTEMD:-../shared/tools/with-systemd.sh}
    if [ ! -f "$tool" ]; then
        echo "check-systemd: skipped: $tool is not here (it comes with this project's CI);"
        echo "               the package was checked without systemd by check-dist.sh only"
        exit 0
    fi
    [ "$(id -u)" = 0 ] || fail "run as root: with-systemd.sh boots a container"
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
    deb=dist/chatrace-relay_${version}_amd64.deb
    [ -f "$deb" ] || fail "$deb is missing (run scripts/dist.sh)"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir "$work/in"
    cp "$deb" "$work/in/chatrace-relay.deb"
    cp "$0" "$work/in/check-systemd.sh"

    # The newer package: this build again, a higher version, and a settings template that
    # changed, as a release that documents a new setting would have. When the template was
    # a conffile, that change made dpkg ask about the user's edited copy.
    dpkg-deb -R "$deb" "$work/pkg"
    sed -i "s/^Version: .*/Version: ${version}+check1/" "$work/pkg/DEBIAN/control"
    template=$work/pkg/usr/share/chatrace-relay/chatrace-relay.default
    [ -f "$template" ] || fail "the .deb has no settings template"
    printf '\n# A setting a newer release documents.\n#CHATRACE_RELAY_EXAMPLE=1\n' >> "$template"
    (cd "$work/pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
        xargs md5sum > DEBIAN/md5sums)
    dpkg-deb -Zgzip --root-owner-group -b "$work/pkg" "$work/in/chatrace-relay-newer.deb" >/dev/null
    echo "check-systemd: the newer package is ${version}+check1"

    suites=${*:-bookworm bullseye}
    for suite in $suites; do
        start=$(date +%s)
        echo "== check-systemd: $suite"
        SYSD_SUITE=$suite timeout 900 "$tool" -r "$work/in:/root/check" \
            sh /root/check/check-systemd.sh --inside "$version" < /dev/null ||
            fail "on $suite (see above)"
        echo "== check-systemd: $suite passed in $(( $(date +%s) - start )) s"
    done
    echo "check-systemd: all checks passed"
    exit 0
fi

# ---------------------------------------------------------------- inside the container
version=$2
newer=${version}+check1
deb=/root/check/chatrace-relay.deb
newer_deb=/root/check/chatrace-relay-newer.deb
db=/var/lib/chatrace-relay/chatrace-relay.db
private=/var/lib/private/chatrace-relay
settings=/etc/default/chatrace-relay
base=http://127.0.0.1:3000
. /etc/os-release
release="Debian $VERSION_ID, $(systemctl --version | head -n 1)"
t0=$(date +%s.%N)
ok() { printf 'ok %5.1f s  %s\n' "$(echo "$(date +%s.%N) $t0" | awk '{ print $1 - $2 }')" "$*"; }
main_pid() { systemctl show -p MainPID --value chatrace-relay; }
get() { curl -fsS --max-time 5 "$@"; }
# systemd refuses a sixth start within 10 s (StartLimitBurst=5); this check restarts more
# often than that on purpose, so it clears the count before each restart of its own.
restart() { systemctl reset-failed chatrace-relay && systemctl restart chatrace-relay; }
# the token in force, for the admin API
api() { get -H "Authorization: Bearer $token" "$base$1"; }

echo "inside: $release"

# --- install, without a terminal
dpkg -i "$deb" < /dev/null > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg -i"; }
# No waiting: with Type=notify, dpkg's `systemctl start` returned once the relay listened.
systemctl is-active --quiet chatrace-relay || { systemctl status chatrace-relay >&2 || true; fail "not active right after dpkg -i"; }
get "$base/healthz" > /dev/null || fail "no answer right after dpkg -i"
[ "$(systemctl show -p Type --value chatrace-relay)" = notify ] || fail "the unit is not Type=notify"
ok "installed without a terminal; active and answering as dpkg returns (Type=notify)"
unit=$(systemctl show -p FragmentPath --value chatrace-relay)
systemd-analyze verify "$unit" > /tmp/verify.log 2>&1 || { cat /tmp/verify.log >&2; fail "systemd-analyze verify"; }
if grep -i -e unknown -e ignoring -e 'not supported' /tmp/verify.log >&2; then
    fail "$release does not know every option of $unit"
fi
if journalctl -b -q --no-pager | grep -i 'chatrace-relay.service:.*\(unknown\|ignoring\)' >&2; then
    fail "systemd ignored lines of the unit"
fi
ok "systemd-analyze verify: every option of $unit is known to this systemd"
[ "$(stat -c %a "$settings")" = 600 ] || fail "$settings is not mode 600"
[ -f "$private/chatrace-relay.db" ] || fail "no database in $private"
[ "$(readlink /var/lib/chatrace-relay)" = private/chatrace-relay ] || fail "/var/lib/chatrace-relay is no link to the private state"
ok "settings root-only; database in $private, linked from /var/lib/chatrace-relay"

# --- a webhook stored; the journal; the sign-in page
token=$(chatrace-relay admin-token --db "$db") || fail "admin-token"
chatrace-relay send-test --db "$db" > /tmp/send.log || { cat /tmp/send.log >&2; fail "send-test"; }
api "/api/messages?limit=5" | grep -q '"text":"Test message from chatrace-relay send-test' ||
    fail "the webhook is not in /api/messages"
ok "a webhook stored and read back through the API"
journalctl -u chatrace-relay -q --no-pager -o cat > /tmp/journal.log
grep -q '^listening on http://127.0.0.1:3000$' /tmp/journal.log || { cat /tmp/journal.log >&2; fail "no listening line in the journal"; }
if grep -e '^\[20' -e ' INFO ' -e '^<[0-9]>' /tmp/journal.log >&2; then
    fail "journal lines with a second timestamp, a level word or an unread priority"
fi
journalctl -u chatrace-relay -q --no-pager -o cat -p info | grep -q '^setup page:' ||
    fail "the setup page line is not at priority info"
ok "the journal has the relay's lines with priorities and no second timestamp"
get "$base/login" | sed 's|&#x2f;|/|g' | grep -q "admin-token --db $db" ||
    fail "the sign-in page does not name $db"
if get "$base/login" | sed 's|&#x2f;|/|g' | grep -q /var/lib/private; then
    fail "the sign-in page names the private path"
fi
ok "the sign-in page names $db"

# --- SIGKILL: systemd restarts it, with the data
before=$(main_pid)
systemctl kill -s KILL --kill-who=main chatrace-relay
i=0
until [ "$(main_pid)" != "$before" ] && [ "$(main_pid)" != 0 ] && systemctl is-active --quiet chatrace-relay; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "not restarted 10 s after SIGKILL"; sleep 0.1
done
api "/api/messages?limit=5" | grep -q '"text":"Test message from chatrace-relay send-test' ||
    fail "the message is gone after SIGKILL"
ok "SIGKILL: restarted by systemd (RestartSec=2), the message still there"

# --- restart answered at once
for n in 1 2 3; do
    restart
    get "$base/healthz" > /dev/null || fail "no answer right after systemctl restart ($n)"
done
ok "systemctl restart, three times: answered at once each time"

# --- the admin token from a systemd credential
install -d -m 700 /etc/chatrace-relay
printf 'credential-admin-token-0123456789abcdef\n' > /etc/chatrace-relay/admin_token
chmod 600 /etc/chatrace-relay/admin_token
mkdir -p /etc/systemd/system/chatrace-relay.service.d
printf '[Service]\nLoadCredential=admin_token:/etc/chatrace-relay/admin_token\n' \
    > /etc/systemd/system/chatrace-relay.service.d/credential.conf
systemctl daemon-reload && restart
db_token=$token
token=credential-admin-token-0123456789abcdef
api "/api/messages?limit=1" > /dev/null || fail "the credential's token does not sign in"
if out=$(chatrace-relay admin-token --db "$db" 2> /tmp/admin-token.err); then
    fail "admin-token printed a token ($([ "$out" = "$db_token" ] && echo "the database's, refused"))"
fi
grep -q 'systemd credential admin_token' /tmp/admin-token.err || { cat /tmp/admin-token.err >&2; fail "admin-token does not name the credential"; }
journalctl -u chatrace-relay -q --no-pager -o cat | grep -q 'sign in with the admin token in the file of the systemd credential admin_token' ||
    fail "the log does not name the credential"
rm -r /etc/systemd/system/chatrace-relay.service.d /etc/chatrace-relay
systemctl daemon-reload && restart
token=$db_token
ok "LoadCredential=admin_token: it signs in; admin-token and the log name the credential"

# --- a newer package over a user-edited settings file, without a terminal
echo CHATRACE_RELAY_PUBLIC_URL=https://relay.example.com >> "$settings"
before=$(main_pid)
systemctl reset-failed chatrace-relay
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
dpkg -i "$newer_deb" < /dev/null > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg -i of the newer package"; }
status=$(dpkg-query -W -f '${Status} ${Version}' chatrace-relay)
[ "$status" = "install ok installed $newer" ] || fail "after the upgrade: $status"
grep -q '^CHATRACE_RELAY_PUBLIC_URL=https://relay.example.com$' "$settings" || fail "the upgrade lost the edit"
if grep -q CHATRACE_RELAY_EXAMPLE "$settings"; then fail "the upgrade rewrote the settings file"; fi
grep -q CHATRACE_RELAY_EXAMPLE /usr/share/chatrace-relay/chatrace-relay.default || fail "no newer template"
[ "$(main_pid)" != "$before" ] && systemctl is-active --quiet chatrace-relay || fail "not restarted by the upgrade"
get "$base/healthz" > /dev/null || fail "no answer right after the upgrade"
journalctl -u chatrace-relay -q --no-pager -o cat --since "$since" | grep -q '^setup page: https://relay.example.com/' ||
    fail "the restarted relay does not use the edited setting"
api "/api/messages?limit=5" | grep -q '"text":"Test message from chatrace-relay send-test' ||
    fail "the message is gone after the upgrade"
ok "upgrade to $newer without a terminal: no question, the edit kept and in force, restarted"

# --- remove keeps the data, purge deletes it
dpkg -r chatrace-relay < /dev/null > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg -r"; }
if systemctl is-active --quiet chatrace-relay; then fail "still running after dpkg -r"; fi
[ ! -e /usr/bin/chatrace-relay ] || fail "dpkg -r left the binary"
[ -f "$private/chatrace-relay.db" ] || fail "dpkg -r deleted the database"
grep -q '^CHATRACE_RELAY_PUBLIC_URL=' "$settings" || fail "dpkg -r deleted the settings"
ok "remove: stopped, binary gone, database and settings kept"
dpkg -P chatrace-relay < /dev/null > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg -P"; }
for path in "$private" /var/lib/chatrace-relay "$settings" /usr/share/chatrace-relay \
    /etc/systemd/system/multi-user.target.wants/chatrace-relay.service; do
    if [ -e "$path" ] || [ -L "$path" ]; then fail "purge left $path"; fi
done
ok "purge: database, settings and enablement gone"
echo "inside: all checks passed on $release"
