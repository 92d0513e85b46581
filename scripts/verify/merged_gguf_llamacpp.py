"""Do the GGUFs `lorikeet merge --format gguf` writes from tuned real models load in llama.cpp
and answer as Lorikeet does?

For each merged GGUF: render a FOLDOC-style question with the file's chat template
(`lorikeet template`), take Lorikeet's prompt ids for it (`lorikeet tokenize --bos`, what
`lorikeet generate` feeds the model), check llama.cpp tokenizes the rendered text the same,
then decode greedily in llama.cpp (llama-cpp-python, n_ctx=512) from those ids and compare the
reply with `lorikeet generate --temperature 0` on the same file.

    lorikeet train recipes/gemma3-270m-foldoc.yaml --set training.batch_size=2 --set data.max_seq_len=128 --set training.eval_batches=5
    lorikeet merge --model gemma3-270m --adapter checkpoints/gemma3-270m-foldoc/best.h5 --format gguf --quant q8_0 --output /tmp/gemma3-merged.gguf
    (the same with qwen2.5-coder-0.5b)
    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/merged_gguf_llamacpp.py /tmp/gemma3-merged.gguf /tmp/qwen-merged.gguf

LORIKEET names the binary (default .build/release/lorikeet). Exit status 0 when every file
loads, answers (a non-empty reply) and its first tokens equal Lorikeet's.
"""
import json, os, subprocess, sys, tempfile
import llama_cpp
import numpy as np

QUESTION = "What is a compiler in computing?"
MAX_TOKENS = 24
COMPARED = 16  # greedy decoding in two engines may part on a near tie late; the first tokens must agree


def lorikeet(binary, *args, stdin=None):
    return subprocess.run([binary, *args], input=stdin, capture_output=True, check=True).stdout.decode()


def main(paths, binary):
    ok = True
    for path in paths:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump([{"role": "user", "content": QUESTION}], f)
        rendered = lorikeet(binary, "template", "--model", path, "--messages", f.name, "--generation-prompt")
        os.unlink(f.name)
        ids = [int(t) for t in lorikeet(binary, "tokenize", "--model", path, "--bos", "--file", "-", stdin=rendered.encode()).split()]
        reply = lorikeet(binary, "generate", "--model", path, "--prompt", QUESTION, "--temperature", "0",
                         "--max-tokens", str(MAX_TOKENS)).rstrip("\n")

        # logits_all and one token per decode call: this llama-cpp-python build (0.3.36, built here)
        # crashes in multi-token decodes on every file, llama.cpp's own too.
        llm = llama_cpp.Llama(model_path=path, n_ctx=512, verbose=False, seed=0, logits_all=True)
        llama_ids = llm.tokenize(rendered.encode(), add_bos=True, special=True)
        stops = {llm.token_eos()} | {t for s in ("<end_of_turn>", "<|im_end|>", "<|endoftext|>")
                                     for t in llm.tokenize(s.encode(), add_bos=False, special=True)[:1]
                                     if len(llm.tokenize(s.encode(), add_bos=False, special=True)) == 1}
        out = []
        for token in ids:
            llm.eval([token])
        while len(out) < MAX_TOKENS:
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            if token in stops:
                break
            out.append(token)
            llm.eval([token])
        answer = llm.detokenize(out).decode("utf-8", errors="replace")
        # As text: Lorikeet prints its reply, not ids. The first COMPARED tokens of llama.cpp's reply
        # must begin Lorikeet's; a reply that ended sooner must be Lorikeet's whole reply.
        head = llm.detokenize(out[:COMPARED]).decode("utf-8", errors="replace")
        same = reply.startswith(head) if len(out) >= COMPARED else reply == answer
        passed = bool(answer.strip()) and same
        ok &= passed
        print(f"{os.path.basename(path)}: loaded ({llm.n_vocab()} tokens), prompt {len(ids)} ids, "
              f"llama.cpp tokenizes the prompt the same: {llama_ids == ids}")
        print(f"  llama.cpp ({len(out)} tokens): {answer!r}")
        print(f"  lorikeet:             {reply!r}")
        print(f"  first {COMPARED} tokens equal: {same} -> {'ok' if passed else 'FAIL'}")
        del llm
    print("all ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:], os.environ.get("LORIKEET", ".build/release/lorikeet")))
