"""Does a Hugging Face folder that `lorikeet merge --format safetensors` writes from a real
Gemma 3 GGUF work as a model in transformers, with Lorikeet's tokenizer and logits?

The folder's tokenizer.json is written by Lorikeet from the GGUF's SentencePiece vocabulary.
For each text below this script compares the ids of
  - transformers' AutoTokenizer on the folder,
  - `lorikeet tokenize --bos` on the folder, and on the GGUF it was merged from,
and, on a few of them, the logits of AutoModelForCausalLM (f32, eager attention) on the folder
with `lorikeet logits` on the same folder and ids.

    lorikeet train recipes/gemma3-270m-foldoc.yaml --set training.batch_size=2 --set data.max_seq_len=128 --set training.eval_batches=5
    lorikeet merge --model gemma3-270m --adapter checkpoints/gemma3-270m-foldoc/best.h5 --format safetensors --dtype f32 --output /tmp/gemma3-merged
    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/merged_gemma_folder_transformers.py /tmp/gemma3-merged [GGUF] [LORIKEET]

GGUF defaults to gemma3-270m, LORIKEET to .build/release/lorikeet. With REFERENCE=DIR, a folder
where transformers saved its own conversion of the GGUF's tokenizer
(`AutoTokenizer.from_pretrained(models_dir, gguf_file=...).save_pretrained(DIR)`), each part
of the folder's tokenizer.json is also compared with DIR/tokenizer.json. Exit status 0 when every
text gives the same ids three ways and the logits agree within 1e-3 with the same argmax at
every position. Runs of 32 or more spaces are left out: there transformers' merges and the
GGUF's user-defined space tokens part ways (see README, "Bring your own model").
"""
import os, subprocess, sys, tempfile
import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

TOLERANCE = 1e-3
TEXTS = [
    "The capital of France is",
    "FOLDOC: A compiler is a program that translates a high-level language into machine code.",
    "  leading spaces,   inner runs\tand a tab ",
    "line one\nline two\n\n\nafter three newlines\n",
    "Unicode: café, naïve, Größe, 日本語のテキスト, Ελληνικά, русский, हिन्दी",
    "Decomposed accent: cafe\u0301; emoji: 😀🦜; rare: \U0001d11e \u2603",
    "<start_of_turn>user\nWhat is a lorikeet?<end_of_turn>\n<start_of_turn>model\n",
    "def f(x):\n    return x ** 2  # squares\n",
]
LOGIT_TEXTS = [0, 1, 6]


def lorikeet_ids(binary, model, text):
    out = subprocess.run([binary, "tokenize", "--model", model, "--bos", "--file", "-"], input=text.encode(),
                         capture_output=True, check=True)
    return [int(t) for t in out.stdout.decode().split()]


def main(folder, gguf, binary):
    ok = True
    if os.environ.get("REFERENCE"):
        import json
        with open(os.path.join(folder, "tokenizer.json")) as f:
            ours = json.load(f)
        with open(os.path.join(os.environ["REFERENCE"], "tokenizer.json")) as f:
            theirs = json.load(f)
        parts = [k for k in theirs if k != "model"] + ["model." + k for k in theirs["model"]]
        differing = [p for p in parts if (ours.get(p) if "." not in p else ours["model"].get(p[6:])) !=
                     (theirs.get(p) if "." not in p else theirs["model"][p[6:]])]
        ok &= not differing and set(ours) == set(theirs)
        print(f"tokenizer.json against transformers' own GGUF conversion: {len(parts)} parts "
              f"({len(theirs['model']['vocab'])} vocabulary entries, {len(theirs['model']['merges'])} merges), "
              f"differing: {differing or 'none'}")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    print(f"tokenizer: {type(tokenizer).__name__}, {len(tokenizer)} tokens")
    ids_of = []
    for n, text in enumerate(TEXTS):
        hf = tokenizer(text).input_ids
        from_folder, from_gguf = lorikeet_ids(binary, folder, text), lorikeet_ids(binary, gguf, text)
        same = hf == from_folder == from_gguf
        ok &= same
        ids_of.append(hf)
        print(f"text {n}: {len(hf)} ids, transformers == lorikeet(folder) == lorikeet(GGUF): {same}")
        if not same:
            print(f"  transformers {hf}\n  folder       {from_folder}\n  GGUF         {from_gguf}")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    print(f"model: {type(model).__name__}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in LOGIT_TEXTS:
            ids = ids_of[n]
            path = os.path.join(tmp, f"logits{n}.safetensors")
            subprocess.run([binary, "logits", "--model", folder, "--ids", ",".join(map(str, ids)), "--output", path],
                           capture_output=True, check=True)
            expected = load_file(path)["logits"].reshape(len(ids), -1)
            with torch.no_grad():
                got = model(torch.tensor([ids])).logits[0].numpy()
            diff = float(np.abs(got - expected).max())
            same_argmax = bool((got.argmax(-1) == expected.argmax(-1)).all())
            passed = diff <= TOLERANCE and same_argmax
            ok &= passed
            print(f"logits, text {n} ({len(ids)} positions): max |transformers - lorikeet| = {diff:.3g}, "
                  f"same argmax everywhere: {same_argmax} -> {'ok' if passed else 'FAIL'}")
    print("all ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "gemma3-270m",
                  sys.argv[3] if len(sys.argv) > 3 else ".build/release/lorikeet"))
