#!/usr/bin/env bash
# Few-label and fully supervised runs of `sprig train` on a shared dataset (see README.md).
#
#   benches/distill.sh DATASET_DIR WORK_DIR [extra `sprig train` flags...]
#
# Few-label protocol (the peers' seeds-k10): the train lines listed in seeds-k10.txt keep
# their label, every other train line and every test line is unlabelled; `sprig graph` and
# `sprig propagate` run over train+test, `sprig train --labels` distils, `sprig eval` scores
# the test lines. Fully supervised: `sprig train` on all train labels, `sprig eval` on test.
# SEEDS_K=5 or 20 takes seeds-k5.txt or seeds-k20.txt instead; FULL=0 skips the fully
# supervised run (which does not depend on the seeds).
#
# The few-label model is then transductive: it trains on the test texts' propagated labels
# (no test label is read). INDUCTIVE=1 leaves the test lines out of the graph and of
# training, so the test texts are new to the model. SwDA's few-label corpus keeps the
# peers' 75,000-line train subsample (the seeds, then the first lines in FNV order:
# `subsample_train` of ../shared/peers/common.py, or $SPRIG_PEERS/common.py), as
# lp_peers.py and quality.py do; MAX_TRAIN=0 keeps every train line.
set -euo pipefail
data=$1; work=$2; shift 2
sprig=${SPRIG:-target/release/sprig}
mkdir -p "$work"
peers=${SPRIG_PEERS:-$(dirname "$0")/../../shared/peers}
default_max=0
[ "$(basename "$data")" = swda ] && default_max=75000
python3 - "$data" "$work" "${INDUCTIVE:-0}" "$peers" "${MAX_TRAIN:-$default_max}" "${SEEDS_K:-10}" <<'PY'
import json, sys
data, work, inductive, peers, max_train, k = sys.argv[1:7]
inductive, max_train = inductive == "1", int(max_train)
sys.path.insert(0, peers)
from common import subsample_train
seeds = {int(x) for x in open(f"{data}/seeds-k{k}.txt").read().split()}
train = [json.loads(line) for line in open(f"{data}/train.jsonl")]
keep = subsample_train([r["text"] for r in train], sorted(seeds), max_train)
with open(f"{work}/fewlabel.jsonl", "w") as out:
    for i in keep:
        r = train[i]
        o = {"text": r["text"]}
        if i in seeds:
            o["label"] = r["label"]
        out.write(json.dumps(o, ensure_ascii=False) + "\n")
    for line in open(f"{data}/test.jsonl") if not inductive else []:
        out.write(json.dumps({"text": json.loads(line)["text"]}, ensure_ascii=False) + "\n")
PY
t0=$(date +%s.%N)
$sprig graph --corpus "$work/fewlabel.jsonl" --out "$work/fewlabel.graph" -q
$sprig propagate --graph "$work/fewlabel.graph" --out "$work/labels.jsonl" -q
t1=$(date +%s.%N)
$sprig train --corpus "$work/fewlabel.jsonl" --labels "$work/labels.jsonl" --out "$work/few.sprig" -q "$@"
t2=$(date +%s.%N)
models=few
if [ "${FULL:-1}" != 0 ]; then
  $sprig train --corpus "$data/train.jsonl" --out "$work/full.sprig" -q "$@"
  models="few full"
fi
t3=$(date +%s.%N)
for m in $models; do
  printf '%s %s: ' "$(basename "$data")" "$m"
  $sprig eval --model "$work/$m.sprig" --data "$data/test.jsonl" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("accuracy %.4f macro-F1 %.4f" % (d["accuracy"], d["macro_f1"]), end=" ")'
  echo "size $(stat -c %s "$work/$m.sprig") bytes"
done
echo "graph+propagate $(echo "$t1 - $t0" | bc) s, train few $(echo "$t2 - $t1" | bc) s, train full $(echo "$t3 - $t2" | bc) s"
