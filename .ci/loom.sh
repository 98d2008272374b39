#!/usr/bin/env bash
# The loom models of rivulet's concurrency protocols (loom-tests/; its README.md says what
# each checks). Extra arguments go to `cargo test`, e.g. `.ci/loom.sh --test wakeup_empty`.
#
# `--cfg loom` reaches every crate in the build, so it gets a target directory of its own
# and never invalidates the ordinary build in target/. `--release` because loom runs each
# model thousands of times; `-C debug-assertions` because the models' checks must stay on
# (loom-tests refuses to compile under loom without them).
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg loom -C debug-assertions"
# 3 is the deepest bound that stock loom 0.7.2 checks without false failures for these
# models (loom-tests/README.md, "loom's limits"); the whole suite takes well under a minute.
export LOOM_MAX_PREEMPTIONS=3
export CARGO_TARGET_DIR=target/loom

start=$(date +%s)
cargo test -p rivulet-loom-tests --release --no-fail-fast "$@"
echo "loom models passed in $(($(date +%s) - start)) s (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
