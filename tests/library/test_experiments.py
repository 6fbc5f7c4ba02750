"""course_utils.experiments: FLOPs per token against PyTorch's counter, budgets, power laws."""

import math

import numpy as np
import pytest
import torch

from course_utils import experiments
from course_utils.models import DecoderModel, EncoderDecoderModel, EncoderModel, ModelConfig


def _cfg(**kw):
    base = dict(vocab_size=41, d_model=32, n_heads=2, n_layers=2, d_ff=48, max_len=40)
    base.update(kw)
    return ModelConfig(**base)


def _attention(cfg, n_tokens, context, backward):
    # The CPU flop counter does not see the fused attention kernel; add its two products.
    return n_tokens * experiments.attention_flops_per_token(cfg, context=context, backward=backward)


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_flops_per_token_matches_the_flop_counter(family, backward):
    torch.manual_seed(0)
    cfg = _cfg()
    model = DecoderModel(cfg) if family == "decoder" else EncoderModel(cfg)
    ids = torch.randint(0, cfg.vocab_size, (3, 20))

    def run():
        out = model(ids) if family == "decoder" else model.masked_lm_logits(ids)
        if backward:
            out.sum().backward()

    measured = experiments.measure_flops(run)
    predicted = 60 * experiments.flops_per_token(cfg, family, context=20, backward=backward)
    assert predicted - _attention(cfg, 60, 20, backward) == measured


def test_encoder_decoder_flops_match_the_flop_counter():
    torch.manual_seed(0)
    cfg = _cfg(n_encoder_layers=2, n_decoder_layers=1)
    model = EncoderDecoderModel(cfg)
    src, tgt = torch.randint(0, 41, (2, 20)), torch.randint(0, 41, (2, 10))
    measured = experiments.measure_flops(lambda: model(src, tgt))
    predicted = 2 * experiments.flops_per_example(
        cfg, "encoder-decoder", length=20, target_len=10, backward=False
    )
    attention = 2 * 4 * cfg.d_model * (2 * 20 * 20 + 1 * (10 * 10 + 10 * 20))
    assert predicted - attention == measured


def test_training_is_three_forward_passes_and_grows_with_context():
    cfg = _cfg()
    forward = experiments.flops_per_token(cfg, "decoder", context=16, backward=False)
    assert experiments.flops_per_token(cfg, "decoder", context=16) == 3 * forward
    longer = experiments.flops_per_token(cfg, "decoder", context=32, backward=False)
    assert longer - forward == cfg.n_layers * 4 * 16 * cfg.d_model


def test_flops_bad_input():
    cfg = _cfg()
    with pytest.raises(ValueError, match="family"):
        experiments.flops_per_token(cfg, "gpt", context=4)
    with pytest.raises(ValueError, match="context"):
        experiments.flops_per_token(cfg, "decoder", context=0)
    with pytest.raises(ValueError, match="source_len"):
        experiments.flops_per_token(cfg, "encoder-decoder", context=4)
    with pytest.raises(ValueError, match="part"):
        experiments.flops_per_token(cfg, "encoder-decoder", context=4, part="both", source_len=3)


def test_non_embedding_params_count_the_block_matrices():
    cfg = _cfg()
    model = DecoderModel(cfg)
    matrices = sum(p.numel() for name, p in model.blocks.named_parameters() if p.dim() == 2)
    assert experiments.non_embedding_params(cfg) == matrices
    both = experiments.family_params(cfg, "encoder-decoder")
    assert both == 2 * matrices + cfg.n_layers * 4 * cfg.d_model**2


def test_steps_for_budget_and_train_for_flops():
    assert experiments.steps_for_budget(10.0, 3.0) == 3
    assert experiments.steps_for_budget(1.0, 3.0) == 1
    with pytest.raises(ValueError):
        experiments.steps_for_budget(0, 1.0)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    data = torch.randn(8, 4)
    run = experiments.train_for_flops(
        model,
        lambda step: data,
        lambda m, batch: m(batch).pow(2).mean(),
        budget=100.0,
        flops_per_step=20.0,
        n_evals=2,
        eval_fn=lambda m: m(data).pow(2).mean().item(),
        progress=False,
    )
    assert run.steps == 5
    assert run.history.steps[-1] == 5
    np.testing.assert_allclose(run.flops, np.arange(1, 6) * 20.0)
    assert run.eval_flops[-1] == 100.0
    with pytest.raises(ValueError, match="eval_fn"):
        experiments.train_for_flops(
            model, lambda s: data, lambda m, b: m(b).sum(), budget=1, flops_per_step=1, n_evals=2
        )


def test_fit_power_law_recovers_an_exact_law_and_matches_polyfit():
    n = np.geomspace(1e3, 1e6, 5)
    law = experiments.fit_power_law(n, 4.0 * n**-0.076)
    assert math.isclose(law.alpha, 0.076, rel_tol=1e-9)
    assert math.isclose(law.a, 4.0, rel_tol=1e-9)
    np.testing.assert_allclose(law(n), 4.0 * n**-0.076)
    rng = np.random.default_rng(0)
    loss = 3 * n**-0.1 * np.exp(rng.normal(0, 0.05, 5))
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
    fit = experiments.fit_power_law(n, loss)
    assert math.isclose(fit.alpha, -slope) and math.isclose(fit.a, math.exp(intercept))


def test_fit_power_law_bad_input():
    with pytest.raises(ValueError, match="positive"):
        experiments.fit_power_law([1, 2, 3], [1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="two different"):
        experiments.fit_power_law([5, 5], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        experiments.fit_power_law([1, 2, 3], [1.0, 2.0])


def test_bootstrap_gives_an_interval_around_the_fit():
    rng = np.random.default_rng(1)
    n = np.geomspace(1e3, 1e5, 6)
    loss = 3 * n**-0.1 * np.exp(rng.normal(0, 0.03, 6))
    law = experiments.bootstrap_power_law(n, loss, n_boot=300, seed=0)
    assert math.isclose(law.alpha, experiments.fit_power_law(n, loss).alpha)
    assert 0 < law.alpha_std < 0.1
    assert law.alpha_low < law.alpha < law.alpha_high
    assert law == experiments.bootstrap_power_law(n, loss, n_boot=300, seed=0)  # seeded
    exact = experiments.bootstrap_power_law(n, 3 * n**-0.1, n_boot=50)
    assert exact.alpha_std < 1e-9
    # Several seeds per size: resample one seed per size.
    seeds = [[v * 0.98, v * 1.02] for v in 3 * n**-0.1]
    law = experiments.bootstrap_power_law(n, seeds, n_boot=200)
    assert math.isclose(law.alpha, 0.1, rel_tol=1e-6) and law.alpha_std > 0
    assert "±" in str(law)


def test_supervised_tokens():
    labels = torch.tensor([[1, -100, 0], [-100, -100, -100]])
    assert experiments.supervised_tokens(labels).tolist() == [2, 0]
    with pytest.raises(ValueError):
        experiments.supervised_tokens(torch.tensor([1, 2]))
