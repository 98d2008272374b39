#!/usr/bin/env bash
# Fuzzing on the stable toolchain: cargo-fuzz (libFuzzer) with RUSTC_BOOTSTRAP=1, which
# lets stable rustc take the `-Z` flags cargo-fuzz passes (no nightly toolchain needed).
# Each target in tools/fuzz/ runs for a bounded time, starting from its checked-in seeds
# (tools/fuzz/seeds/TARGET/, read only); what it finds goes to target/fuzz-corpus/TARGET
# (scratch), and a failing input to tools/fuzz/artifacts/TARGET/ (replay it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tools/fuzz -s none TARGET FILE`).
#
# Usage: .ci/fuzz.sh [TARGET...]   (default: every target)
# FUZZ_LOG_SECONDS (default 60) is the time of the checkpoint log reader (log_scan);
# FUZZ_SECONDS (default 10) that of each other target.
set -euo pipefail
cd "$(dirname "$0")/.."

log_seconds=${FUZZ_LOG_SECONDS:-60}
seconds=${FUZZ_SECONDS:-10}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(log_scan log_damage socket_lines csv_decode json_decode)
fi

# cargo-fuzz from crates.io (its version pinned, so CI does not change under us).
if ! cargo fuzz --version 2>/dev/null | grep -q '0\.13\.'; then
    cargo install cargo-fuzz --version '~0.13' --locked
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: rivulet's code is safe Rust but for one mmap call, and ASan would halve
# the executions per second; libFuzzer still finds panics, assertion failures, hangs and
# overflows (cargo-fuzz builds with debug assertions and overflow checks).
fuzz=(--fuzz-dir tools/fuzz -s none)

start=$(date +%s)
cargo fuzz build "${fuzz[@]}"
echo "fuzz targets built in $(($(date +%s) - start)) s"
for target in "${targets[@]}"; do
    budget=$seconds
    [ "$target" = log_scan ] && budget=$log_seconds
    corpus=target/fuzz-corpus/$target
    mkdir -p "$corpus"
    echo "--> $target for ${budget} s"
    log=target/fuzz-corpus/$target.log
    set +e
    cargo fuzz run "${fuzz[@]}" "$target" "$corpus" "tools/fuzz/seeds/$target" -- \
        -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1
    status=$?
    set -e
    # libFuzzer's last progress line and its executions count.
    grep -E '^#[0-9]+ +(DONE|pulse)|stat::number_of_executed_units' "$log" | tail -2 || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target FAILED (exit $status); the input is in tools/fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
done
echo "fuzzing passed in $(($(date +%s) - start)) s"
