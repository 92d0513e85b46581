"""Ask a running `lorikeet serve` through the official `openai` Python client (PyPI) and check
that, at temperature 0, every answer is the text `lorikeet generate` printed for the same
question, streaming and not.

Usage: python openai_client_serve.py PORT EXPECTED.json
EXPECTED.json: {"question": "...", "max_tokens": N, "expected": {"model name": "text", ...}}
Exit status 0 when every answer matches; the mismatches are printed otherwise.
Ran with openai==3.57.0 (the peers venv).
"""
import json
import sys

import openai

port, expected_path = int(sys.argv[1]), sys.argv[2]
spec = json.load(open(expected_path))
client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=spec.get("api_key", "unused"))
served = [m.id for m in client.models.list().data]
failures = []
for model, expected in spec["expected"].items():
    if model not in served:
        failures.append(f"{model}: not in /v1/models {served}")
        continue
    messages = [{"role": "user", "content": spec["question"]}]
    whole = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=spec["max_tokens"])
    text = whole.choices[0].message.content
    if text != expected:
        failures.append(f"{model} (whole): {text!r} != {expected!r}")
    if whole.usage.completion_tokens <= 0 or whole.usage.prompt_tokens <= 0:
        failures.append(f"{model}: usage {whole.usage}")
    pieces = []
    finish = None
    for chunk in client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=spec["max_tokens"], stream=True):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    if "".join(pieces) != expected:
        failures.append(f"{model} (stream): {''.join(pieces)!r} != {expected!r}")
    if finish != whole.choices[0].finish_reason:
        failures.append(f"{model}: stream finish {finish} != {whole.choices[0].finish_reason}")
    print(f"{model}: {text!r} ({whole.choices[0].finish_reason}, {whole.usage.completion_tokens} tokens)")
try:
    client.chat.completions.create(model="no-such-adapter", messages=[{"role": "user", "content": "hi"}])
    failures.append("an unknown model was answered")
except openai.NotFoundError as error:
    print(f"unknown model: {error.status_code} {error.body}")
for failure in failures:
    print("MISMATCH", failure)
sys.exit(1 if failures else 0)
