"""Does llama.cpp load what `lorikeet export --format gguf` writes, and agree with Lorikeet?

Exports CKPT as a LoRA GGUF and as a PEFT folder, then decodes greedily from 4 chat prompts:
llama.cpp (llama-cpp-python 0.3.36; ../shared/peers/setup.sh with LLAMACPP=1) with the LoRA
GGUF over SmolLM2's Q4_1 GGUF, against `lorikeet generate --adapter PEFT_FOLDER` (the same
adapter, unmerged, over the same GGUF as stored). llama.cpp multiplies Q4_1 weights by
8-bit-quantized activations, so the two are not bit-equal; the check is that the replies
agree, and that without the LoRA llama.cpp says something else (the adapter is really applied).

    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/llamacpp_lora_parity.py CKPT [--tokens 24]
"""
import argparse, os, subprocess, sys, tempfile
from llama_cpp import Llama
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BIN = os.path.join(ROOT, ".build", "release", "lorikeet")
BASE = os.path.expanduser("~/.cache/lorikeet/models/SmolLM2-135M-Instruct.Q4_1.gguf")
HF = os.path.expanduser("~/.cache/lorikeet-peers/smollm2-hf")
PROMPTS = ["What is a compiler?", "What is FOLDOC?", "What is a monad?", "Define 'garbage collection'."]


def greedy(llm, ids, n, tok):
    out = []
    for t in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        if t == llm.token_eos() or t == 2 or len(out) >= n:
            break
        out.append(t)
    return tok.decode(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--tokens", type=int, default=24)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lorikeet-gguf-")
    lora, peft = os.path.join(work, "lora.gguf"), os.path.join(work, "peft")
    subprocess.run([BIN, "export", "--adapter", args.checkpoint, "--format", "gguf", "--output", lora], check=True)
    subprocess.run([BIN, "export", "--adapter", args.checkpoint, "--format", "peft", "--output", peft], check=True)
    tok = AutoTokenizer.from_pretrained(HF)
    with_lora = Llama(model_path=BASE, lora_path=lora, n_ctx=512, n_threads=2, verbose=False)
    without = Llama(model_path=BASE, n_ctx=512, n_threads=2, verbose=False)
    same = differs_without = 0
    for text in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        theirs = greedy(with_lora, ids, args.tokens, tok)
        plain = greedy(without, ids, args.tokens, tok)
        ours = subprocess.run([BIN, "generate", "--adapter", peft, "--prompt", text, "--temperature", "0", "--max-tokens", str(args.tokens)],
                              check=True, capture_output=True, text=True).stdout.rstrip("\n")
        same += ours == theirs
        differs_without += plain != theirs
        print(("same " if ours == theirs else "DIFF ") + repr(text))
        print("  llama.cpp + LoRA:", repr(theirs))
        print("  lorikeet + LoRA: ", repr(ours))
        print("  llama.cpp alone: ", repr(plain))
    print(f"{same}/{len(PROMPTS)} replies identical ({args.tokens} greedy tokens); without the LoRA llama.cpp differs on {differs_without}/{len(PROMPTS)}")
    sys.exit(0 if same == len(PROMPTS) and differs_without > 0 else 1)


if __name__ == "__main__":
    main()
