#!/usr/bin/env python3
"""Derives HWU64's scenario-level task: a second label set on the same texts, for checking
that sprig's defaults carry to a task they were not chosen on.

HWU64's intents are named `SCENARIO_INTENT` (`alarm_query`, `iot_hue_lightchange`); the
scenario is the part before the first underscore (18 of them, from 1.8% to 16.9% of train,
where the 64 intents are near balanced). The script writes DIR/{train,dev,test}.jsonl with
the scenario as the label, then the shared protocol's seed files with
../shared/peers/seeds.py (the same FNV-1a order, so the seeds are the same rule's):

    python3 benches/scenarios.py ../shared/corpora/hwu64 /tmp/hwu64-scenario
    $PY benches/quality.py --data /tmp/hwu64-scenario --peers --peer-methods spread,lr_seeds
"""
import json
import os
import subprocess
import sys

src, out = sys.argv[1], sys.argv[2]
peers = os.environ.get("SPRIG_PEERS", os.path.join(os.path.dirname(__file__), "..", "..",
                                                   "shared", "peers"))
os.makedirs(out, exist_ok=True)
for split in ("train", "dev", "test"):
    with open(os.path.join(src, f"{split}.jsonl"), encoding="utf-8") as f, \
            open(os.path.join(out, f"{split}.jsonl"), "w", encoding="utf-8") as g:
        for line in f:
            r = json.loads(line)
            r["label"] = r["label"].split("_", 1)[0]
            g.write(json.dumps(r, ensure_ascii=False) + "\n")
subprocess.run([sys.executable, os.path.join(peers, "seeds.py"), "--data", out], check=True)
