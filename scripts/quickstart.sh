#!/usr/bin/env bash
# The main job on the embedded default (SmolLM2-135M-Instruct + FOLDOC), from a fresh machine:
# set-up, a release build, the data-prep, a QLoRA fine-tune (200 steps of 4 × 256 tokens),
# the loss before and after on held-out FOLDOC examples, and the loss curves. Merging, export
# and generation with the adapter join here as they land.
# QUICKSTART_STEPS=N shortens the run (e.g. 20 for a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product lorikeet
bin=.build/release/lorikeet
steps=${QUICKSTART_STEPS:-200}
run=checkpoints/smollm2-foldoc
echo "== lorikeet $($bin --version)"
echo "== the embedded base model: what it is, its license, and what loading it costs"
$bin inspect smollm2 --load
echo "== data-prep: FOLDOC entries → chat examples (data/foldoc/{train,valid,test}.jsonl)"
$bin data prepare-foldoc --output data/foldoc
$bin data preview --recipe recipes/smollm2-foldoc.yaml --count 1
echo "== the base model on 100 held-out FOLDOC test examples"
$bin eval --model smollm2 --data data/foldoc/test.jsonl --limit 100
echo "== QLoRA fine-tune: NF4 base, r=16 on all linear layers, $steps steps (Ctrl-C saves; resume with --resume latest)"
rm -rf "$run"
$bin train recipes/smollm2-foldoc.yaml --set training.steps="$steps" --output "$run"
echo "== the same test examples with the adapter"
$bin eval --model smollm2 --adapter "$(ls "$run"/step-*.h5 | tail -1)" --data data/foldoc/test.jsonl --limit 100
echo "== loss curves"
$bin plot "$(ls "$run"/step-*.h5 | tail -1)"
