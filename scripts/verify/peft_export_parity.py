"""Does PEFT load what `lorikeet export --format peft` writes, and agree with Lorikeet?

Exports CKPT as a PEFT folder, applies it with PeftModel.from_pretrained over SmolLM2's
dequantized GGUF weights (../shared/peers/setup.sh writes them to
~/.cache/lorikeet-peers/smollm2-hf), decodes greedily with transformers, and compares the
tokens with `lorikeet generate --adapter FOLDER --temperature 0` over the same GGUF (the
adapter unmerged over the weights as stored, the very weights transformers dequantized).

    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/peft_export_parity.py CKPT [--tokens 32]
Exit status 0 when the replies are identical.
"""
import argparse, os, subprocess, sys, tempfile
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

HF = os.path.expanduser(os.environ.get("SMOLLM2_HF", "~/.cache/lorikeet-peers/smollm2-hf"))
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BIN = os.path.join(ROOT, ".build", "release", "lorikeet")
PROMPTS = ["What is a compiler?", "What is FOLDOC?", "What is a monad?", "Define 'garbage collection'."]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="lorikeet-peft-")
    subprocess.run([BIN, "export", "--adapter", args.checkpoint, "--format", "peft", "--output", folder], check=True)
    tok = AutoTokenizer.from_pretrained(HF)
    base = AutoModelForCausalLM.from_pretrained(HF, dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, folder).eval()
    failures = 0
    for text in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        prompt = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=args.tokens,
                                 do_sample=False, eos_token_id=None, pad_token_id=tok.eos_token_id)
        theirs = tok.decode(out[0][len(ids):]).split("<|im_end|>")[0]
        ours = subprocess.run([BIN, "generate", "--adapter", folder, "--prompt", text, "--temperature", "0",
                               "--max-tokens", str(args.tokens)], check=True, capture_output=True, text=True).stdout.rstrip("\n")
        same = ours == theirs
        failures += not same
        print(("same " if same else "DIFF ") + repr(text))
        if not same:
            print("  peft:    ", repr(theirs))
            print("  lorikeet:", repr(ours))
    print(f"{len(PROMPTS) - failures}/{len(PROMPTS)} replies identical ({args.tokens} greedy tokens, PEFT over {HF})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
