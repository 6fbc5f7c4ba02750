"""Quality of the course's DecoderModel with nanoGPT's CPU recipe (lab 05's target).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD python3 benchmarks/decoder_quality.py [--steps 2000]

Trains ``course_utils.models.DecoderModel`` on the default corpus (Python's language
reference, character tokens, the last 10% held out) with the configuration of nanoGPT's
``shakespeare_char`` CPU example: 4 layers, 4 heads, width 128, context 64, batch 12,
2,000 steps, AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices), linear warm-up
over 100 steps then cosine decay to 1e-4, gradient clipping at 1, no dropout. Batches are
drawn exactly as lab 05 draws them. The validation loss is the mean over 200 fixed batches
of held-out windows (nanoGPT's ``eval_iters=200``).

Target: validation loss <= 1.45 nats per character after 2,000 steps (a plain nanoGPT-style
reference reached 1.42 on this corpus). The 2,000 steps take at least 1.5 minutes of pure
training on a quiet 2-core CPU and several times that on a busy one, more than lab 05's
4-minute budget leaves beside everything else the lab does, so the lab's ``cpu`` profile
trains 1,000 steps (its own warm-up and cosine over 1,000) and quotes this script's result.

Prints the loss every 250 steps, the final validation loss, the wall time and tokens/s, and
exits with 1 if the target is missed. Timings on a shared machine are noisy; the loss is
not (the run is seeded and deterministic on one machine).

Latest results (2026-12-02, torch 2.13 CPU, the 2-core machine shared with other work,
load average 8 to 11 during the run):
    step 250: 2.2534   500: 1.9562   750: 1.7967   1000: 1.6595
    step 1250: 1.5523  1500: 1.4929  1750: 1.4384  2000: 1.4190
    final validation loss 1.4190 nats/char (target <= 1.45), perplexity 4.13;
    wall 609.6 s (training steps 479.3 s), 3,205 tokens/s (slow because of the load).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its threads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from course_utils import data  # noqa: E402
from course_utils.models import DecoderModel, ModelConfig  # noqa: E402
from course_utils.tokenizers import CharTokenizer  # noqa: E402
from course_utils.training import evaluate_loss, train, warmup_cosine  # noqa: E402

TARGET = 1.45  # nats per character on the validation text after 2,000 steps
RECIPE = dict(n_layers=4, n_heads=4, d_model=128, block_size=64, batch_size=12)


def random_batch(source: torch.Tensor, generator: torch.Generator, block: int, batch: int):
    starts = torch.randint(0, len(source) - block - 1, (batch,), generator=generator).tolist()
    x = torch.stack([source[s : s + block] for s in starts])
    y = torch.stack([source[s + 1 : s + 1 + block] for s in starts])
    return x, y


def next_token_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-batches", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    text = data.load_corpus()
    tokenizer = CharTokenizer.train(text)
    ids = torch.tensor(tokenizer.encode(text))
    train_ids, val_ids = data.train_val_split(ids, 0.1)
    block, batch = RECIPE["block_size"], RECIPE["batch_size"]
    val_batches = [
        random_batch(val_ids, torch.Generator().manual_seed(1000 + i), block, batch)
        for i in range(args.eval_batches)
    ]

    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=RECIPE["d_model"],
        n_heads=RECIPE["n_heads"],
        n_layers=RECIPE["n_layers"],
        d_ff=4 * RECIPE["d_model"],
        max_len=block,
        dropout=0.0,
    )
    model = DecoderModel(config)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.99),
    )
    train_gen = torch.Generator().manual_seed(1)

    def validate(m):
        return evaluate_loss(m, lambda i: val_batches[i], next_token_loss, len(val_batches))

    print(
        f"DecoderModel {RECIPE}, {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{args.steps} steps, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    start = time.perf_counter()
    history = train(
        model,
        lambda step: random_batch(train_ids, train_gen, block, batch),
        next_token_loss,
        steps=args.steps,
        optimizer=optimizer,
        scheduler=warmup_cosine(args.steps, warmup=100, min_factor=0.1),
        grad_clip=1.0,
        eval_every=250,
        eval_fn=validate,
        progress=False,
        seed=0,
    )
    wall = time.perf_counter() - start
    for step, loss in zip(history.eval_steps, history.eval_loss):
        print(f"step {step:5d}: validation loss {loss:.4f}")
    final = history.final_eval_loss
    print(
        f"final validation loss {final:.4f} nats/char (target <= {TARGET}); "
        f"perplexity {math.exp(final):.2f}"
    )
    print(
        f"wall {wall:.1f} s (training steps {history.train_seconds:.1f} s), "
        f"{history.tokens_per_second:,.0f} tokens/s"
    )
    if args.steps == 2000 and final > TARGET:
        print(f"FAILED: {final:.4f} > {TARGET}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
