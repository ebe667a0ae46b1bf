#!/usr/bin/env bash
# Side-by-side benchmark report (issue 7): one command that builds release, starts vouchdb and a
# PostgreSQL 15 on this machine, runs the pgbench workloads (single-row INSERT with a PK and a
# secondary index; PK SELECT) at 1, 4, 16 and 32 clients against both, and verified_get against
# vouchdb, all in one run; then writes a Markdown table of ratios and a PNG chart (throughput vs
# clients, both systems) into docs/PERFORMANCE.md (between its report markers) and
# docs/performance-throughput.png.
# Usage: benches/report.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CLIENTS="1 4 16 32"
source benches/lib.sh
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install --quiet matplotlib
start_both report 55733 55734
fill_sel "$VURL" "$PGURL"
: >"$WORK/results.txt"
for w in insert select; do
  for c in $CLIENTS; do
    echo "$w $c vouchdb $(tps "$VURL" $w.sql "$c")" >>"$WORK/results.txt"
    echo "$w $c postgres $(tps "$PGURL" $w.sql "$c")" >>"$WORK/results.txt"
  done
done
for c in 1 16; do echo "verified_get $c vouchdb $(tps "$VURL" verified_get.sql "$c")" >>"$WORK/results.txt"; done
python3 - "$WORK/results.txt" "$SECS" "$(git rev-parse --short HEAD)" <<'PY'
import sys, re, datetime
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
path, secs, commit = sys.argv[1], sys.argv[2], sys.argv[3]
r = {}
for line in open(path):
    w, c, system, tps = line.split()
    r[(w, int(c), system)] = float(tps)
clients = sorted({c for (w, c, s) in r if w == "insert"})
rows = ["| workload | clients | vouchdb tps | PostgreSQL 15 tps | ratio | target |", "|---|---|---|---|---|---|"]
targets = {("insert", 16): "≥ 2.0 (issue 7), ≥ 1.0 (issue 3)", ("select", 1): "≥ 1.0", ("select", 16): "≥ 1.0"}
for w in ["insert", "select"]:
    for c in clients:
        v, p = r[(w, c, "vouchdb")], r[(w, c, "postgres")]
        rows.append(f"| {'INSERT (PK + 1 index)' if w == 'insert' else 'PK SELECT'} | {c} | {v:,.0f} | {p:,.0f} | {v/p:.2f} | {targets.get((w, c), '—')} |")
vg = ["| clients | PK SELECT tps | verified_get tps | ratio (target ≥ 0.5) |", "|---|---|---|---|"]
for c in [1, 16]:
    s, g = r[("select", c, "vouchdb")], r[("verified_get", c, "vouchdb")]
    vg.append(f"| {c} | {s:,.0f} | {g:,.0f} | {g/s:.2f} |")
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
    f"Command: `benches/report.sh {secs}` (builds release; starts vouchdb and PostgreSQL 15, both durable, on",
    "this machine; pgbench -M prepared -j 2 with `benches/pgbench/insert.sql`, `select.sql` and",
    "`verified_get.sql`; every figure below is from this one run).",
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
