#!/usr/bin/env bash
# The main job on the embedded default (SmolLM2-135M-Instruct + FOLDOC), from a fresh machine:
# set-up, a release build, the data-prep, a QLoRA fine-tune (100 steps of 4 × 256 tokens, the frozen base in bf16),
# the loss before and after on held-out FOLDOC examples, replies to 10 of them scored in a
# report, the loss curves, the adapter merged into a GGUF that llama.cpp/Ollama load, and the
# base and merged models answering a held-out term.
# QUICKSTART_STEPS=N shortens the run (e.g. 20 for a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product lorikeet
bin=.build/release/lorikeet
steps=${QUICKSTART_STEPS:-100}
run=checkpoints/smollm2-foldoc
started=$SECONDS  # the clock starts once set up and built
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
echo "== 10 held-out terms answered by the base and by base + adapter (greedy), scored against FOLDOC"
$bin eval --model smollm2 --adapter "$(ls "$run"/step-*.h5 | tail -1)" --data data/foldoc/test.jsonl --limit 10 --compare \
  --generate --max-tokens 48 --report "$run/eval-report.md" --report "$run/eval-report.json"
echo "== loss curves"
$bin plot "$(ls "$run"/step-*.h5 | tail -1)"
echo "== the adapter merged into the base: a GGUF for llama.cpp and Ollama"
$bin merge --adapter "$(ls "$run"/step-*.h5 | tail -1)" --format gguf --quant q8_0 --output "$run/merged-q8_0.gguf" --force
question=$(python3 -c 'import json,sys; m=json.loads(open(sys.argv[1]).readline())["messages"]; print(next(x["content"] for x in m if x["role"]=="user"))' data/foldoc/test.jsonl)
answer=$(python3 -c 'import json,sys; m=json.loads(open(sys.argv[1]).readline())["messages"]; print(next(x["content"] for x in m if x["role"]=="assistant")[:300])' data/foldoc/test.jsonl)
echo "== a held-out term: $question"
echo "-- FOLDOC says: $answer"
echo "-- the base model:"
$bin generate --model smollm2 --prompt "$question" --max-tokens 80 --temperature 0
echo "-- the merged model:"
$bin generate --model "$run/merged-q8_0.gguf" --prompt "$question" --max-tokens 80 --temperature 0
echo "== the main job took $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s once set up and built"
