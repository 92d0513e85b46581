"""llama.cpp's prefill and decode speed on a GGUF, through llama-cpp-python (the peers venv,
../shared/peers/setup.sh; 0.3.36 built from source here), in the manner of llama-bench's pp/tg:
fixed pseudo-random token ids, no sampling, one thread count.

On a CPU that reports AMX where AMX tiles fault (the development machine: every multi-token
eval crashed in ggml_backend_amx_mul_mat), build it without AMX:
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
      -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON
      -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    pip install --force-reinstall --no-deps --no-binary llama-cpp-python "llama-cpp-python[server]==0.3.36"

env: MODEL (a .gguf), P (prompt tokens), N (decoded tokens), THREADS, SEED
prints one line: 'llama.cpp P=.. N=..: prefill X tok/s, decode Y tok/s, peak RSS Z MiB' (the
Python process's peak, interpreter included)"""
import os, random, resource, time
from llama_cpp import Llama

path, P, N = os.environ["MODEL"], int(os.environ.get("P", 128)), int(os.environ.get("N", 64))
threads = int(os.environ.get("THREADS", os.cpu_count()))
llm = Llama(model_path=path, n_ctx=P + N + 8, n_batch=max(P, 1), n_threads=threads, n_threads_batch=threads, verbose=False)
rng = random.Random(int(os.environ.get("SEED", 7)))
vocab = llm.n_vocab()
prompt = [rng.randrange(vocab) for _ in range(P)]
decode = [rng.randrange(vocab) for _ in range(N)]
llm.eval(prompt[:16])  # warm-up, as llama-bench does: page the weights in, set up the threads
llm.reset()
t0 = time.perf_counter()
llm.eval(prompt)
t1 = time.perf_counter()
for token in decode:
    llm.eval([token])
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(f"llama.cpp P={P} N={N}: prefill {P / (t1 - t0):.1f} tok/s, decode {N / (t2 - t1):.1f} tok/s, peak RSS {peak:.0f} MiB")
