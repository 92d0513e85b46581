#!/usr/bin/env bash
# The data-parallel must-shows on the real recipe: DataParallelRunTests (mpirun -np 2 vs one
# process with gradient accumulation 2, the same over two network namespaces, a killed rank and
# the resume on one process, a stuck rank, a failing rank) on SmolLM2 with recipes/smollm2-foldoc.yaml
# (bf16 compute, dropout 0.05, max_seq_len 256, batch 4 × accumulation 2), 10 steps each, with a
# release `lorikeet`. CI runs the same tests on the tiny fixture model in seconds; this takes
# about half an hour on 2 cores.
#
#   LORIKEET_MPI_TEST_SET="data.max_seq_len=64"   extra recipe overrides (optional)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
swift build -c release --product lorikeet
swift build --build-tests
export LORIKEET_MPI_TEST_MODEL=smollm2
export LORIKEET_MPI_TEST_BINARY="$PWD/.build/release/lorikeet"
uptime
swift test --skip-build --disable-swift-testing --filter DataParallelRunTests
uptime
