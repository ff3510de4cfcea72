#!/bin/sh
# Fuzzes the exposition parser with AFL++ for $1 seconds (default 600), seeded from the shared
# corpora (copied to a temporary folder, never into the repo). Needs `cargo install cargo-afl`.
#   agent/fuzz/run.sh 600
# Crashes land in $OUT/default/crashes (OUT defaults to a fresh temporary folder); reproduce one
# with `cargo afl run --bin prom_parse < crash-file` from agent/fuzz.
set -eu
seconds=${1:-600}
here=$(cd "$(dirname "$0")" && pwd)
shared=${CORPORA_DIR:-$here/../../../shared/corpora}
samples=${SAMPLES_DIR:-$here/../../../shared/samples}
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
OUT=${OUT:-$(mktemp -d)}
n=0
for file in "$shared"/openmetrics/parsers/*/metrics "$shared"/prometheus-text/expfmt-fuzz-corpus/* "$samples"/*.txt; do
    [ -f "$file" ] || continue
    n=$((n + 1))
    # AFL wants small seeds: keep the first 4 KB of the large samples.
    head -c 4096 "$file" > "$seeds/seed_$n"
done
echo "seeds: $n in $seeds; output: $OUT"
cd "$here"
cargo afl build --release --bin prom_parse
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
cargo afl fuzz -V "$seconds" -i "$seeds" -o "$OUT" "${CARGO_TARGET_DIR:-target}/release/prom_parse"
echo "crashes: $(find "$OUT"/default/crashes -type f ! -name README.txt 2>/dev/null | wc -l) (in $OUT/default/crashes)"
