"""Does transformers load the Hugging Face folders `lorikeet merge` writes from Gemma 3 and
Qwen2 GGUFs, and give Lorikeet's logits?

MergeHuggingFaceConfigTests merges the tiny llama.cpp-converted fixtures
(Tests/ArchitecturesTests/Fixtures/{gemma3,qwen2}/model.gguf) with a random LoRA adapter into
safetensors folders; with LORIKEET_KEEP_MERGED=DIR it keeps each folder in DIR/<family> with
lorikeet_logits.json: the token ids and Lorikeet's logits of base + *unmerged* adapter. This
script loads each folder with AutoModelForCausalLM (f32, eager attention) and compares.

    LORIKEET_KEEP_MERGED=/tmp/merged swift test --skip-build --filter MergeHuggingFaceConfigTests
    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/merged_folder_transformers.py /tmp/merged

Exit status 0 when every folder loads and its logits agree within 1e-4 with the same argmax
at every position.
"""
import json, os, sys
import numpy as np
import torch
from transformers import AutoModelForCausalLM

TOLERANCE = 1e-4


def main(root):
    ok = True
    for family in sorted(os.listdir(root)):
        folder = os.path.join(root, family)
        with open(os.path.join(folder, "lorikeet_logits.json")) as f:
            record = json.load(f)
        expected = np.array(record["logits"], dtype=np.float32).reshape(record["shape"])
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        with torch.no_grad():
            got = model(torch.tensor([record["ids"]])).logits.numpy()
        got = got.reshape(expected.shape)
        diff = float(np.abs(got - expected).max())
        same_argmax = bool((got.argmax(-1) == expected.argmax(-1)).all())
        passed = diff <= TOLERANCE and same_argmax
        ok &= passed
        print(f"{family}: {type(model).__name__}, max |transformers - lorikeet| = {diff:.3g}, "
              f"same argmax at all {expected.shape[-2]} positions: {same_argmax} -> {'ok' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
