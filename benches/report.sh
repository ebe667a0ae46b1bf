#!/usr/bin/env bash
# Side-by-side benchmark report (issue 7): one command that builds release, starts vouchdb and a
# PostgreSQL 15 on this machine, runs the pgbench workloads (single-row INSERT with a PK and a
# secondary index; PK SELECT) at 1, 4, 16 and 32 clients against both, and verified_get against
# vouchdb, all in one run; then writes a Markdown table of ratios and a PNG chart (throughput vs
# clients, both systems) into docs/PERFORMANCE.md (between its report markers) and
# docs/performance-throughput.png.
# Every point is measured ROUNDS times, the rounds interleaved (all workloads, then again), and the
# median is reported with the lowest and highest round: on a 2-core machine one 10-second run of the
# same point varies by up to 2x between runs.
# Before the rounds, each server runs the INSERT workload at 16 clients for WARM seconds (default 20),
# not measured, so both are measured in a steady state rather than just after start (vouchdb reuses
# WAL files only once it has written some: `ledger/open.rs`); PostgreSQL gets the same warm-up.
# Usage: benches/report.sh [seconds per run, default 10] [rounds, default 3] [warm-up seconds, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${2:-3}
WARM=${3:-20}
CLIENTS="1 4 16 32"
source benches/lib.sh
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install --quiet matplotlib
start_both report 55733 55734
fill_sel "$VURL" "$PGURL"
if [ "$WARM" -gt 0 ]; then
  for url in "$VURL" "$PGURL"; do SECS=$WARM tps "$url" insert.sql 16 >/dev/null; done
fi
: >"$WORK/results.txt"
for _ in $(seq "$ROUNDS"); do
  for w in insert select; do
    for c in $CLIENTS; do
      echo "$w $c vouchdb $(tps "$VURL" $w.sql "$c")" >>"$WORK/results.txt"
      echo "$w $c postgres $(tps "$PGURL" $w.sql "$c")" >>"$WORK/results.txt"
    done
  done
  for c in 1 16; do echo "verified_get $c vouchdb $(tps "$VURL" verified_get.sql "$c")" >>"$WORK/results.txt"; done
done
python3 - "$WORK/results.txt" "$SECS" "$(git rev-parse --short HEAD)" "$ROUNDS" "$WARM" <<'PY'
import sys, re, datetime
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import statistics
path, secs, commit, rounds, warm = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
runs = {}
for line in open(path):
    w, c, system, tps = line.split()
    runs.setdefault((w, int(c), system), []).append(float(tps))
r = {k: statistics.median(v) for k, v in runs.items()}
def cell(k):
    v = runs[k]
    return f"{r[k]:,.0f}" if len(v) == 1 else f"{r[k]:,.0f} ({min(v):,.0f}–{max(v):,.0f})"
clients = sorted({c for (w, c, s) in r if w == "insert"})
rows = ["| workload | clients | vouchdb tps | PostgreSQL 15 tps | ratio of medians | target |", "|---|---|---|---|---|---|"]
targets = {("insert", 16): "≥ 2.0 (issue 7), ≥ 1.0 (issue 3)", ("select", 1): "≥ 1.0", ("select", 16): "≥ 1.0"}
for w in ["insert", "select"]:
    for c in clients:
        v, p = r[(w, c, "vouchdb")], r[(w, c, "postgres")]
        rows.append(f"| {'INSERT (PK + 1 index)' if w == 'insert' else 'PK SELECT'} | {c} | {cell((w, c, 'vouchdb'))} | {cell((w, c, 'postgres'))} | {v/p:.2f} | {targets.get((w, c), '—')} |")
vg = ["| clients | PK SELECT tps | verified_get tps | ratio (target ≥ 0.5) |", "|---|---|---|---|"]
for c in [1, 16]:
    s, g = r[("select", c, "vouchdb")], r[("verified_get", c, "vouchdb")]
    vg.append(f"| {c} | {cell(('select', c, 'vouchdb'))} | {cell(('verified_get', c, 'vouchdb'))} | {g/s:.2f} |")
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, w, title in [(axes[0], "insert", "single-row INSERT (durable)"), (axes[1], "select", "PK SELECT")]:
    for system, style in [("vouchdb", "o-"), ("postgres", "s--")]:
        ax.plot(clients, [r[(w, c, system)] for c in clients], style, label="vouchdb" if system == "vouchdb" else "PostgreSQL 15")
    ax.set_xscale("log", base=2); ax.set_xticks(clients); ax.set_xticklabels([str(c) for c in clients])
    ax.set_xlabel("clients"); ax.set_ylabel("transactions/s"); ax.set_title(title); ax.grid(alpha=.3); ax.legend()
fig.suptitle(f"pgbench -M prepared, {secs} s per point, same 2-core machine, same run ({commit})")
fig.tight_layout()
fig.savefig("docs/performance-throughput.png", dpi=100)
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
section = "\n".join([
    "<!-- report:start -->",
    f"## Side-by-side report ({when}, commit {commit})",
    "",
    f"Command: `benches/report.sh {secs} {rounds} {warm}` (builds release; starts vouchdb and PostgreSQL 15, both durable, on",
    "this machine; pgbench -M prepared -j 2 with `benches/pgbench/insert.sql`, `select.sql` and",
    f"`verified_get.sql`; first {warm} s of INSERT at 16 clients on each server, not measured; every figure below is from",
    f"this one run: the median of {rounds} interleaved rounds of {secs} s per point, with the lowest and highest round in",
    "brackets; the chart plots the medians).",
    "",
    *rows, "", "verified_get on vouchdb (same run):", "", *vg, "",
    "![throughput vs clients](performance-throughput.png)",
    "<!-- report:end -->",
])
doc = open("docs/PERFORMANCE.md").read()
if "<!-- report:start -->" in doc:
    doc = re.sub(r"<!-- report:start -->.*?<!-- report:end -->", lambda m: section, doc, flags=re.S)
else:
    head, _, rest = doc.partition("\n## ")
    doc = head + "\n" + section + "\n\n## " + rest
open("docs/PERFORMANCE.md", "w").write(doc)
print("\n".join(rows + [""] + vg))
PY
