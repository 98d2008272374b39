#!/usr/bin/env bash
# Fuzzing on the stable toolchain with libFuzzer (the libfuzzer-sys crate, as cargo-fuzz
# uses it): the targets in tools/fuzz/ are built with the coverage instrumentation
# cargo-fuzz would pass (all of it stable `-C` flags; no sanitizer, so no `-Z` flag and no
# nightly), then each runs for a bounded time from its checked-in seeds
# (tools/fuzz/seeds/TARGET/, read only). What a run finds goes to the scratch corpus
# target/fuzz-corpus/TARGET/; a failing input to target/fuzz-artifacts/TARGET/, and
# `tools/fuzz/target/<host>/release/TARGET FILE` replays it.
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

host=$(rustc -vV | sed -n 's/^host: //p')
# cargo-fuzz 0.13's flags for `cargo fuzz build -s none --debug-assertions`: sancov
# coverage with inline 8-bit counters, comparison tracing and stack depth, `--cfg
# fuzzing`, debug assertions (and so overflow checks), one codegen unit (the sancov pass
# otherwise blocks ThinLTO's imports). rivulet is safe Rust but for one mmap call, so
# AddressSanitizer (a nightly `-Z` flag) would add little and halve the speed.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Ccodegen-units=1"

start=$(date +%s)
# --target: so RUSTFLAGS instrument the targets but not build scripts (as cargo-fuzz).
cargo build --release --manifest-path tools/fuzz/Cargo.toml --target "$host" --bins \
    --config 'profile.release.debug="line-tables-only"'
echo "fuzz targets built in $(($(date +%s) - start)) s"
bin=tools/fuzz/target/$host/release
for target in "${targets[@]}"; do
    budget=$seconds
    [ "$target" = log_scan ] && budget=$log_seconds
    corpus=target/fuzz-corpus/$target
    artifacts=target/fuzz-artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    echo "--> $target for ${budget} s"
    log=target/fuzz-corpus/$target.log
    set +e
    "$bin/$target" "$corpus" "tools/fuzz/seeds/$target" -max_total_time="$budget" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        >"$log" 2>&1
    status=$?
    set -e
    grep -E 'stat::number_of_executed_units' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target FAILED (exit $status); the input is in $artifacts/" >&2
        exit "$status"
    fi
done
echo "fuzzing passed in $(($(date +%s) - start)) s"
