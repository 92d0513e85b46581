#!/usr/bin/env bash
# The main job on the embedded default (SmolLM2-135M-Instruct + FOLDOC), from a fresh machine:
# set-up, a release build, then every stage the toolkit has today. Later stages (train → eval
# → merge → generate) join here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product lorikeet
bin=.build/release/lorikeet
echo "== lorikeet $($bin --version)"
echo "== the embedded base model: what it is, its license, and what loading it costs"
$bin inspect smollm2 --load
echo "== engine matmul vs raw OpenBLAS on a SmolLM2-sized linear layer (batch 4 × 512 tokens)"
$bin bench gemm --shapes 2048x576x1536 --repeats 9
echo "== a greedy answer from the base model (first version: no KV cache yet, so ~3 tokens/s)"
$bin generate --model smollm2 --prompt "What is a compiler?" --max-tokens 32 --temperature 0
