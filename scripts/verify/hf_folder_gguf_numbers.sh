#!/usr/bin/env bash
# Does the same model as a Hugging Face folder (written by transformers from the GGUF) train,
# evaluate and generate with the GGUF's numbers? Runs the same commands on both and prints them
# side by side; exits 1 when any line differs.
#   scripts/verify/hf_folder_gguf_numbers.sh [GGUF-or-name] [FOLDER]
# Defaults: qwen2.5-coder-0.5b and ~/.cache/lorikeet/models/qwen2.5-coder-0.5b-hf, written by
#   ~/.cache/lorikeet-peers/venv/bin/python /work/shared/peers/hf_from_gguf.py <gguf> <folder>
# Both train over an NF4 encoding of the base (the recipe's `quantization.base: nf4`): the GGUF's
# default would be its own blocks and a folder of f32 weights has none, so the representation is
# named to compare like with like. Needs a release build and data/foldoc (lorikeet data prepare-foldoc).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${LORIKEET:-.build/release/lorikeet}
gguf=${1:-qwen2.5-coder-0.5b}
folder=${2:-$HOME/.cache/lorikeet/models/qwen2.5-coder-0.5b-hf}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for side in gguf folder; do
    model=$gguf; [ $side = folder ] && model=$folder
    {
        "$bin" eval --model "$model" --data data/foldoc/test.jsonl --limit 8 --report "$out/$side-base.json" >/dev/null
        "$bin" train recipes/qwen2.5-coder-0.5b-foldoc.yaml --set model.path="$model" --set training.steps=3 \
            --set training.batch_size=2 --set data.max_seq_len=128 --set training.eval_every=3 \
            --set training.eval_batches=2 --set output.dir="$out/$side-run" >/dev/null
        checkpoint=$(ls "$out/$side-run"/*/best.h5)
        "$bin" inspect "$checkpoint" | grep -E '^(train|val) loss'
        "$bin" eval --model "$model" --adapter "$checkpoint" --data data/foldoc/test.jsonl --limit 8 --report "$out/$side-tuned.json" >/dev/null
        python3 -c 'import json, sys; [print(n, repr(json.load(open(sys.argv[1] + "-" + n + ".json"))["runs"][0]["loss"])) for n in ("base", "tuned")]' "$out/$side"
        "$bin" generate --model "$model" --adapter "$checkpoint" --prompt "What is a compiler in computing?" --temperature 0 --max-tokens 24
    } > "$out/$side.txt" 2>/dev/null
done
paste -d'\n' "$out/gguf.txt" "$out/folder.txt" | sed 'N;s/\n/\n   folder: /;s/^/gguf:   /'
cmp -s "$out/gguf.txt" "$out/folder.txt" && echo "same numbers" || { echo "DIFFERENT"; exit 1; }
