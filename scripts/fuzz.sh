#!/usr/bin/env bash
# Fuzzes the webhook parser and its text and time helpers (the targets in fuzz/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 seconds each, every target
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`); without
# them it prints a notice and exits 0, so CI on a machine without them still passes. A
# crash, a hang (no answer within 30 s) or a build failure exits non-zero, after all
# targets have run. Crashing inputs are saved in fuzz/artifacts/TARGET/; what a run found
# interesting accumulates in fuzz/corpus/TARGET/, so later runs start from there.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "notice: fuzzing skipped: needs the nightly toolchain and cargo-fuzz" \
        "(rustup toolchain install nightly; cargo install cargo-fuzz --locked)"
    exit 0
fi
cargo +nightly fuzz --version

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Seeds, written on every run (cheap, and the same names each time): the fixture bodies
# under several content types, and a few known-tricky strings. Payload inputs are
# `CONTENT-TYPE-SELECTOR QUERY \0 BODY`, see fuzz/fuzz_targets/payload.rs.
seed() { # seed TARGET NAME BYTES (printf format)
    mkdir -p "fuzz/corpus/$1"
    # shellcheck disable=SC2059
    printf "$3" >"fuzz/corpus/$1/seed-$2"
}
mkdir -p fuzz/corpus/payload
for fixture in tests/fixtures/*.json tests/fixtures/*.txt; do
    name=$(basename "$fixture")
    for selector in 0 1 2; do # none, JSON, form
        { printf "\\x0$selector\\0"; cat "$fixture"; } >"fuzz/corpus/payload/seed-$selector-$name"
    done
done
{ printf '\x00'; cat tests/fixtures/form-encoded.txt; printf '\0'; } >fuzz/corpus/payload/seed-query-only
seed payload query-and-json '\x01secret=abc&hub.mode=x\0{"data":{"contact_id":1,"text":"a"}}'
seed payload garbage-type '\x07text/html;;\0contact_id=1&text=hi\0'
mkdir -p fuzz/corpus/form
cp tests/fixtures/form-encoded.txt fuzz/corpus/form/seed-fixture
seed form tricky 'a=1&b=x+y&&c&d=%%D0%%9F&e=1=2&f=%%zz%%4&g=%%e2%%82&h=100%%'
seed time z '2026-11-13T10:15:02Z'
seed time offset '2026-11-13t12:15:02.811999+02:00'
seed time edge '9999-12-31 23:59:60-23:59'
seed time min '0000-01-01T00:00:00+23:59'

status=0
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        dict=("-dict=fuzz/dict/$target.dict")
    fi
    # No sanitizer: the fuzzed code is safe Rust, and panics, overflow checks (on by
    # default in cargo-fuzz builds) and hangs are what we look for; ASan would halve the
    # executions per second for nothing. One process (-jobs unset), so shared cores stay
    # usable. libFuzzer's line per new corpus entry (thousands a minute) is left out of
    # the log; its periodic status lines, the final count and any crash report stay.
    if ! cargo +nightly fuzz run --sanitizer none "$target" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 "${dict[@]}" 2>&1 |
        awk '!/^#[0-9]+[ \t]+(NEW|REDUCE) / { print; fflush() }'; then
        echo "FUZZ FAILURE in $target: see the panic above and fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit $status
