"""How fast are the course's models next to Hugging Face's and a plain nanoGPT-style GPT?

    OMP_WAIT_POLICY=PASSIVE python benchmarks/models_speed.py [--rounds 7] [--steps 20]
        [--skip-train] [--skip-generate] [--skip-seq2seq]

Not a test: timings on a shared machine are noisy, so they are measured here and reported
(benchmarks/README.md keeps the latest results), never asserted in the test suite.

1. Training at nanoGPT's CPU configuration (4 layers, 4 heads, width 128, context 64, batch
   12, a character vocabulary of 65, no dropout, AdamW), eager mode as learners run it:
   ``DecoderModel`` (GPT-2's architecture: pre-norm, GELU-tanh, tied head, biases),
   Hugging Face's ``GPT2LMHeadModel`` of the same shape, and a plain nanoGPT-style GPT
   written below (fused QKV, ``F.scaled_dot_product_attention``, bias on). The three train
   in turns, one step each, ``--rounds`` x ``--steps`` steps, every step timed alone, so
   that load from other work on the machine hits them alike; the median step counts.
   Printed: tokens/s, the ratios, and the model-FLOPs utilisation (6 N + 12 L T C FLOPs
   per token, as nanoGPT's ``estimate_mfu``) against a float32 matmul peak measured in the
   same run.
   Targets: DecoderModel >= 1.15x GPT2LMHeadModel and >= 1.0x the nanoGPT-style model.
2. Generation: 256 new tokens after a 16-token prompt (batch 1, greedy; the context is 512
   so nothing is cropped): ``DecoderModel.generate`` with and without the KV cache, and
   Hugging Face's ``generate(use_cache=True)``. Target: cached >= Hugging Face.
3. Encoder-decoder: one training step and one greedy decode of ``EncoderDecoderModel``
   against ``BartForConditionalGeneration`` of the same shape.

OMP_WAIT_POLICY=PASSIVE is set below, before torch loads: with the default (active)
policy, idle OpenMP threads spin and steal the CPU from everything else on the machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.layers import count_parameters  # noqa: E402
from course_utils.models import DecoderModel, EncoderDecoderModel, ModelConfig  # noqa: E402

VOCAB, LAYERS, HEADS, WIDTH, BLOCK, BATCH = 65, 4, 4, 128, 64, 12


# --------------------------------------------------------------------------------------------
# A plain nanoGPT-style GPT (after Karpathy's nanoGPT model.py), GPT-2's architecture
# --------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, c: int, h: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.n_head, self.n_embd = h, c

    def forward(self, x):
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        q = q.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        v = v.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c, 4 * c)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU, as in DecoderModel and HF
        self.c_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c: int, h: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c)
        self.attn = CausalSelfAttention(c, h)
        self.ln_2 = nn.LayerNorm(c)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    def __init__(self, vocab: int, block: int, layers: int, heads: int, c: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(block, c)
        self.h = nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c)
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying

    def forward(self, idx):
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def matmul_peak(n: int = 512, repeats: int = 20) -> float:
    """float32 matmul FLOP/s on this machine now (best of several (n, n) @ (n, n))."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def gpt_models():
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=VOCAB,
        d_model=WIDTH,
        n_heads=HEADS,
        n_layers=LAYERS,
        max_len=BLOCK,
        activation="gelu_tanh",
    )
    ours = DecoderModel(cfg)
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_cfg = GPT2Config(
        vocab_size=VOCAB,
        n_positions=BLOCK,
        n_embd=WIDTH,
        n_layer=LAYERS,
        n_head=HEADS,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = GPT2LMHeadModel(hf_cfg)
    nano = NanoGPT(VOCAB, BLOCK, LAYERS, HEADS, WIDTH)
    return {
        "DecoderModel": (ours, lambda m, x: m(x)),
        "GPT2LMHeadModel": (hf, lambda m, x: m(x, use_cache=False).logits),
        "nanoGPT-style": (nano, lambda m, x: m(x)),
    }


def train_steps(model, logits_of, batches, opt) -> float:
    """Seconds for len(batches) AdamW steps."""
    start = time.perf_counter()
    for x, y in batches:
        logits = logits_of(model, x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def bench_train(rounds: int, steps: int, peak: float) -> dict[str, float]:
    models = gpt_models()
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, VOCAB, (200_000,), generator=gen)

    def batch():
        i = torch.randint(0, data.numel() - BLOCK - 1, (BATCH,), generator=gen)
        x = torch.stack([data[j : j + BLOCK] for j in i.tolist()])
        y = torch.stack([data[j + 1 : j + 1 + BLOCK] for j in i.tolist()])
        return x, y

    batches = [batch() for _ in range(steps)]
    opts = {}
    for name, (model, logits_of) in models.items():
        model.train()
        opts[name] = torch.optim.AdamW(model.parameters(), lr=1e-3)
        train_steps(model, logits_of, batches[:5], opts[name])  # warm up
    # The models take turns step by step (in a rotating order), each step timed alone: a
    # burst of load from elsewhere then hits all three, and the median ignores it.
    times = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        for i, batch_xy in enumerate(batches):
            for name in names[(r + i) % 3 :] + names[: (r + i) % 3]:
                model, logits_of = models[name]
                times[name].append(train_steps(model, logits_of, [batch_xy], opts[name]))
    tokens = BATCH * BLOCK
    rate = {name: tokens / statistics.median(t) for name, t in times.items()}
    print(
        f"\nTraining, {LAYERS} layers, {HEADS} heads, width {WIDTH}, context {BLOCK}, "
        f"batch {BATCH}, vocabulary {VOCAB}; median of {rounds} x {steps} steps, "
        f"interleaved step by step"
    )
    for name, (model, _) in models.items():
        n = count_parameters(model)
        flops = (6 * n + 12 * LAYERS * BLOCK * WIDTH) * rate[name]
        q = statistics.quantiles(times[name], n=4)
        spread = (q[2] - q[0]) / statistics.median(times[name])
        print(
            f"  {name:16s} {rate[name]:9.0f} tokens/s  {n / 1e6:.3f}M params  "
            f"MFU {100 * flops / peak:5.1f}%  (interquartile spread {100 * spread:.0f}%)"
        )
    ratio_hf = rate["DecoderModel"] / rate["GPT2LMHeadModel"]
    ratio_nano = rate["DecoderModel"] / rate["nanoGPT-style"]
    print(f"  DecoderModel / GPT2LMHeadModel = {ratio_hf:.2f}x (target >= 1.15)")
    print(f"  DecoderModel / nanoGPT-style   = {ratio_nano:.2f}x (target >= 1.00)")
    return {"hf": ratio_hf, "nano": ratio_nano}


@torch.no_grad()
def bench_generate(rounds: int) -> None:
    torch.manual_seed(0)
    block, prompt_len, new = 512, 16, 256
    from transformers import GPT2Config, GPT2LMHeadModel

    hf = GPT2LMHeadModel(
        GPT2Config(vocab_size=VOCAB, n_positions=block, n_embd=WIDTH, n_layer=LAYERS, n_head=HEADS)
    ).eval()
    ours = DecoderModel.from_gpt2(hf).eval()
    prompt = torch.randint(0, VOCAB, (1, prompt_len))
    runs = {
        "DecoderModel.generate, cache": lambda: ours.generate(prompt, new, temperature=0),
        "DecoderModel.generate, no cache": lambda: ours.generate(
            prompt, new, temperature=0, use_cache=False
        ),
        "HF generate(use_cache=True)": lambda: hf.generate(
            prompt,
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            use_cache=True,
            pad_token_id=0,
            attention_mask=torch.ones_like(prompt),
        ),
    }
    outs = {name: run() for name, run in runs.items()}  # warm up, and check they agree
    same = torch.equal(outs["DecoderModel.generate, cache"], outs["HF generate(use_cache=True)"])
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(
        f"\nGeneration, {new} new tokens after a {prompt_len}-token prompt, batch 1, greedy "
        f"(context {block}); median of {rounds}; same tokens as HF: {same}"
    )
    rate = {name: new / statistics.median(t) for name, t in times.items()}
    for name in runs:
        print(f"  {name:32s} {rate[name]:8.0f} tokens/s")
    ratio = rate["DecoderModel.generate, cache"] / rate["HF generate(use_cache=True)"]
    print(f"  cached DecoderModel / HF = {ratio:.2f}x (target >= 1.0)")
    speedup = rate["DecoderModel.generate, cache"] / rate["DecoderModel.generate, no cache"]
    print(f"  the cache speeds DecoderModel.generate up {speedup:.1f}x")


def bench_seq2seq(rounds: int, steps: int) -> None:
    torch.manual_seed(0)
    from transformers import BartConfig, BartForConditionalGeneration

    layers, src_len, tgt_len, batch, new = 2, 32, 16, 32, 16
    hf = BartForConditionalGeneration(
        BartConfig(
            vocab_size=VOCAB,
            d_model=WIDTH,
            encoder_layers=layers,
            decoder_layers=layers,
            encoder_attention_heads=HEADS,
            decoder_attention_heads=HEADS,
            encoder_ffn_dim=4 * WIDTH,
            decoder_ffn_dim=4 * WIDTH,
            max_position_embeddings=64,
            dropout=0.0,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            forced_eos_token_id=None,
        )
    )
    ours = EncoderDecoderModel.from_bart(hf, dropout=0.0)
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(3, VOCAB, (batch, src_len), generator=gen)
    tgt = torch.randint(3, VOCAB, (batch, tgt_len + 1), generator=gen)
    models = {
        "EncoderDecoderModel": (ours, lambda m: m(src, tgt[:, :-1])),
        "BartForConditionalGeneration": (
            hf,
            lambda m: m(input_ids=src, decoder_input_ids=tgt[:, :-1], use_cache=False).logits,
        ),
    }
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, (m, _) in models.items()}

    def step(name):
        model, logits_of = models[name]
        logits = logits_of(model)
        F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten()).backward()
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)

    for name in models:
        models[name][0].train()
        for _ in range(3):
            step(name)
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name in models:
            start = time.perf_counter()
            for _ in range(steps):
                step(name)
            times[name].append((time.perf_counter() - start) / steps)
    print(
        f"\nEncoder-decoder training step, {layers}+{layers} layers, width {WIDTH}, batch "
        f"{batch}, source {src_len}, target {tgt_len}; median of {rounds} rounds of {steps}"
    )
    for name in models:
        print(f"  {name:30s} {1000 * statistics.median(times[name]):7.1f} ms/step")
    ratio = statistics.median(times["BartForConditionalGeneration"]) / statistics.median(
        times["EncoderDecoderModel"]
    )
    print(f"  EncoderDecoderModel / BART = {ratio:.2f}x (speed)")

    hf.eval()
    ours = EncoderDecoderModel.from_bart(hf).eval()  # the trained weights, so outputs agree
    ours.config.eos_id = None  # decode exactly `new` tokens in both, eos or not
    hf.generation_config.eos_token_id = None
    with torch.no_grad():
        runs = {
            "EncoderDecoderModel.greedy_decode": lambda: ours.greedy_decode(
                src, max_new_tokens=new
            ),
            "BART generate(num_beams=1)": lambda: hf.generate(
                src,
                attention_mask=torch.ones_like(src),
                max_new_tokens=new,
                num_beams=1,
                do_sample=False,
                use_cache=True,
            ),
        }
        outs = {name: run() for name, run in runs.items()}
        same = torch.equal(*outs.values())
        times = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    print(
        f"\nGreedy decode, batch {batch}, {new} new tokens; median of {rounds}; same tokens: {same}"
    )
    for name in runs:
        print(f"  {name:36s} {1000 * statistics.median(times[name]):7.1f} ms")
    ratio = statistics.median(times["BART generate(num_beams=1)"]) / statistics.median(
        times["EncoderDecoderModel.greedy_decode"]
    )
    print(f"  EncoderDecoderModel / BART = {ratio:.2f}x (speed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--skip-seq2seq", action="store_true")
    args = parser.parse_args()
    from transformers import __version__ as hf_version
    from transformers import logging

    logging.set_verbosity_error()
    peak = matmul_peak()
    print(
        f"torch {torch.__version__}, transformers {hf_version}, {torch.get_num_threads()} "
        f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average "
        f"{os.getloadavg()[0]:.2f}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    if not args.skip_train:
        bench_train(args.rounds, args.steps, peak)
    if not args.skip_generate:
        bench_generate(max(3, args.rounds // 2))
    if not args.skip_seq2seq:
        bench_seq2seq(max(3, args.rounds // 2), max(5, args.steps // 2))


if __name__ == "__main__":
    main()
