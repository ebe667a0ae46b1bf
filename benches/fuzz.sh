#!/usr/bin/env bash
# Run the cargo-fuzz targets (fuzz/, docs/FUZZING.md) for a bounded number of executions each, one
# after another, and print executions, seconds, exec/s and crashes per target. Not part of CI.
#
#   benches/fuzz.sh [runs-per-target (default 10000000)] [target...]
#
# Targets default to all five. Each starts from fuzz/seeds/<target>/ plus its corpus from earlier runs
# (fuzz/corpus/<target>/, git-ignored); a crashing input lands in fuzz/artifacts/<target>/ (git-ignored):
# minimise it (`cargo +nightly fuzz tmin`), fix the bug, and keep the input in
# fuzz/regressions/<target>/, which tests/fuzz_regressions.rs runs in every `cargo test`.
#
# Built with nightly, `-s none` (no sanitizer: the code under test is safe Rust; RocksDB is not
# exercised by the fuzzed inputs) and debug assertions on (so integer overflow panics), under nice 19.
# Environment:
#   FUZZ_TARGET_DIR   cargo's target directory for the fuzz build (default ~/.cache/vouchdb-fuzz-build/target)
#   ROCKSDB_LIB_DIR   a prebuilt librocksdb.a to link instead of compiling RocksDB again (default: the
#                     one in $CARGO_TARGET_DIR or ./target from an earlier release build, if any)
#   FUZZ_ARGS         extra libFuzzer flags (e.g. "-jobs=2 -workers=2", "-max_total_time=600")
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-10000000}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(sql_frontend pgwire_frame proofs_checkpoints canonical_decoders copy_formats)
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/vouchdb-fuzz-build/target}

# Longest input per target: long enough for the seeds, short enough to keep exec/s up.
max_len() {
    case $1 in
        sql_frontend) echo 1024 ;;
        pgwire_frame) echo 1024 ;;
        proofs_checkpoints) echo 4096 ;;
        *) echo 2048 ;;
    esac
}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || { echo "benches/fuzz.sh: needs a nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }

if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
    lib=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
    if [ -n "$lib" ]; then
        mkdir -p "$FUZZ_TARGET_DIR/../rocksdb"
        cp -u "$lib" "$FUZZ_TARGET_DIR/../rocksdb/librocksdb.a"
    fi
    [ -f "$FUZZ_TARGET_DIR/../rocksdb/librocksdb.a" ] && export ROCKSDB_LIB_DIR=$FUZZ_TARGET_DIR/../rocksdb ROCKSDB_STATIC=1
fi

FUZZ=(nice -n 19 cargo +nightly fuzz)
BUILD_FLAGS=(--release -s none --debug-assertions --target-dir "$FUZZ_TARGET_DIR")
for t in "${TARGETS[@]}"; do "${FUZZ[@]}" build "${BUILD_FLAGS[@]}" "$t"; done

printf '%-20s %12s %9s %9s %8s\n' target executions seconds exec/s crashes
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    log=$(mktemp)
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -runs="$RUNS" -max_len="$(max_len "$t")" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" ${FUZZ_ARGS:-} >"$log" 2>&1 || true
    end=$(date +%s.%N)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
    crashes=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
    secs=$(echo "$end - $start" | bc)
    printf '%-20s %12s %9.0f %9.0f %8s\n' "$t" "$execs" "$secs" "$(echo "$execs / $secs" | bc -l)" "$crashes"
    if [ "$crashes" -gt 0 ]; then
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    fi
    cp "$log" "fuzz/artifacts/$t.log"
    rm -f "$log"
done
