"""The shared training loop: it learns, repeats exactly, evaluates on schedule, fails clearly."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from course_utils import training  # noqa: E402
from course_utils.training import (  # noqa: E402
    History,
    count_tokens,
    evaluate_loss,
    train,
    warmup_cosine,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# A tiny regression problem: y = x @ w_true + noise.
W_TRUE = torch.tensor([[2.0], [-1.0], [0.5]])


def regression_batch(step, batch_size=32):
    x = torch.randn(batch_size, 3)
    return x, x @ W_TRUE + 0.01 * torch.randn(batch_size, 1)


def mse(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


def fixed_val_batch(i):
    g = torch.Generator().manual_seed(1000 + i)
    x = torch.randn(64, 3, generator=g)
    return x, x @ W_TRUE


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 1)


# A tiny token-classification problem (integer inputs): predict token % 4.
class TokenClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(16, 8)
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, ids):
        return self.head(self.dropout(self.embed(ids)))


def token_batch(step):
    ids = torch.randint(0, 16, (8, 5))
    return {"ids": ids, "labels": ids % 4}


def token_loss(model, batch):
    logits = model(batch["ids"])
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())


def test_training_reduces_regression_loss():
    model = make_model()
    before = evaluate_loss(model, fixed_val_batch, mse, 2)
    history = train(model, regression_batch, mse, steps=150, lr=0.05, progress=False, seed=0)
    after = evaluate_loss(model, fixed_val_batch, mse, 2)
    assert after < 0.01 * before
    assert history.train_loss[-1] < 0.05 * history.train_loss[0]
    assert torch.allclose(model.weight.detach(), W_TRUE.T, atol=0.05)


def test_training_reduces_classification_loss_with_dict_batches():
    torch.manual_seed(0)
    model = TokenClassifier()
    history = train(model, token_batch, token_loss, steps=60, lr=0.05, progress=False, seed=0)
    assert history.train_loss[0] > 1.2  # about ln(4) = 1.39 at the start
    assert history.train_loss[-1] < 0.3


def test_same_seed_gives_identical_histories():
    def run():
        torch.manual_seed(0)
        model = TokenClassifier()  # has dropout: the seed must cover it too
        return train(
            model,
            token_batch,
            token_loss,
            steps=30,
            lr=0.01,
            progress=False,
            seed=123,
            eval_every=10,
            eval_fn=lambda m: evaluate_loss(m, token_batch, token_loss, 2),
        ), model

    (h1, m1), (h2, m2) = run(), run()
    assert h1.steps == h2.steps
    assert h1.train_loss == h2.train_loss
    assert h1.eval_loss == h2.eval_loss
    assert torch.equal(m1.head.weight, m2.head.weight)


def test_steps_are_counted_from_one_and_passed_to_get_batch():
    seen = []

    def get_batch(step):
        seen.append(step)
        return regression_batch(step)

    history = train(make_model(), get_batch, mse, steps=5, progress=False)
    assert seen == [1, 2, 3, 4, 5]
    assert history.steps == [1, 2, 3, 4, 5]
    assert len(history.train_loss) == 5


def test_eval_schedule_every_n_steps_and_at_the_end():
    calls = []

    def eval_fn(model):
        calls.append(model.training)
        return 1.0

    history = train(
        make_model(),
        regression_batch,
        mse,
        steps=25,
        eval_every=10,
        eval_fn=eval_fn,
        progress=False,
    )
    assert history.eval_steps == [10, 20, 25]
    assert history.eval_loss == [1.0, 1.0, 1.0]
    assert calls == [False, False, False]  # eval_fn always sees model.eval()

    history = train(
        make_model(),
        regression_batch,
        mse,
        steps=20,
        eval_every=10,
        eval_fn=eval_fn,
        progress=False,
    )
    assert history.eval_steps == [10, 20]  # the end is not evaluated twice

    history = train(make_model(), regression_batch, mse, steps=7, eval_fn=eval_fn, progress=False)
    assert history.eval_steps == [7]  # without eval_every: only at the end


def test_eval_runs_without_grad_and_training_resumes_in_train_mode():
    modes = []

    def eval_fn(model):
        assert not torch.is_grad_enabled()
        return 0.5

    def loss_fn(model, batch):
        modes.append(model.training)
        return mse(model, batch)

    train(
        make_model(),
        regression_batch,
        loss_fn,
        steps=6,
        eval_every=2,
        eval_fn=eval_fn,
        progress=False,
    )
    assert modes == [True] * 6


def test_eval_fn_may_return_a_tensor_but_not_text():
    history = train(
        make_model(),
        regression_batch,
        mse,
        steps=2,
        eval_fn=lambda m: torch.tensor(0.25),
        progress=False,
    )
    assert history.eval_loss == [0.25] and isinstance(history.eval_loss[0], float)
    with pytest.raises(TypeError, match="eval_fn must return a number"):
        train(make_model(), regression_batch, mse, steps=2, eval_fn=lambda m: "low", progress=False)


@pytest.mark.parametrize("start_in_train_mode", [True, False])
def test_restores_training_mode(start_in_train_mode):
    model = TokenClassifier()
    model.train(start_in_train_mode)
    train(model, token_batch, token_loss, steps=3, progress=False, eval_fn=lambda m: 0.0)
    assert model.training is start_in_train_mode
    assert model.dropout.training is start_in_train_mode


def test_restores_mixed_submodule_modes_even_after_an_error():
    model = TokenClassifier()
    model.train()
    model.dropout.eval()  # e.g. a frozen part kept in eval mode on purpose

    def failing_loss(model, batch):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(model, token_batch, failing_loss, steps=3, progress=False)
    assert model.training is True
    assert model.dropout.training is False


def test_gradient_clipping_is_called_with_the_limit(monkeypatch):
    limits = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        limits.append(max_norm)
        return real(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    train(make_model(), regression_batch, mse, steps=4, grad_clip=0.5, progress=False)
    assert limits == [0.5] * 4
    limits.clear()
    train(make_model(), regression_batch, mse, steps=4, grad_clip=None, progress=False)
    assert limits == []


def test_gradient_clipping_bounds_the_update():
    # One SGD step with lr=1: the parameter change is the (clipped) gradient itself.
    model = make_model()
    before = torch.cat([p.detach().clone().flatten() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)

    def big_batch(step):
        x = 100 * torch.randn(16, 3)
        return x, x @ W_TRUE + 100

    train(model, big_batch, mse, steps=1, optimizer=optimizer, grad_clip=0.25, progress=False)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.25, rel=1e-4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", None, True])
def test_steps_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="steps must be a positive int"):
        train(make_model(), regression_batch, mse, steps=bad, progress=False)


def test_other_bad_arguments_are_named():
    with pytest.raises(ValueError, match="eval_every must be a positive int"):
        train(make_model(), regression_batch, mse, steps=2, eval_every=0, eval_fn=lambda m: 0)
    with pytest.raises(ValueError, match="eval_fn"):
        train(make_model(), regression_batch, mse, steps=2, eval_every=1)
    with pytest.raises(ValueError, match="log_every"):
        train(make_model(), regression_batch, mse, steps=2, log_every=0)
    with pytest.raises(ValueError, match="grad_clip"):
        train(make_model(), regression_batch, mse, steps=2, grad_clip=0)
    with pytest.raises(ValueError, match="lr must be positive"):
        train(make_model(), regression_batch, mse, steps=2, lr=0)
    frozen = make_model().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(frozen, regression_batch, mse, steps=2)


def test_non_scalar_loss_is_reported_with_its_shape():
    def per_example_loss(model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).squeeze(1)

    with pytest.raises(ValueError, match=r"scalar tensor.*shape \(32,\).*\.mean\(\)"):
        train(make_model(), regression_batch, per_example_loss, steps=3, progress=False)


def test_loss_as_python_number_is_reported():
    with pytest.raises(TypeError, match=r"returned float.*not loss.item\(\)"):
        train(
            make_model(), regression_batch, lambda m, b: mse(m, b).item(), steps=3, progress=False
        )


def test_loss_without_grad_is_reported():
    def detached(model, batch):
        return mse(model, batch).detach()

    with pytest.raises(ValueError, match="does not require grad at step 1"):
        train(make_model(), regression_batch, detached, steps=3, progress=False)


def test_nan_loss_names_the_step_and_suggests_a_lower_lr():
    def loss_fn(model, batch):
        loss = mse(model, batch)
        return loss * float("nan") if calls.append(1) or len(calls) == 4 else loss

    calls = []
    model = make_model()
    with pytest.raises(FloatingPointError, match=r"step 4 of 10.*lower lr") as info:
        train(model, regression_batch, loss_fn, steps=10, lr=0.1, progress=False)
    assert "0.01" in str(info.value)  # the suggested learning rate
    assert model.training is True


def test_diverging_training_stops_with_a_clear_message():
    model = make_model()

    def huge_batch(step):
        x = 1e18 * torch.randn(32, 3)
        return x, x @ W_TRUE

    with pytest.raises(FloatingPointError, match=r"loss became (inf|nan) at step \d+"):
        train(
            model,
            huge_batch,
            mse,
            steps=50,
            lr=1e30,
            grad_clip=None,
            progress=False,
            optimizer=torch.optim.SGD(model.parameters(), lr=1e30),
        )


def test_progress_false_prints_nothing(capfd):
    train(make_model(), regression_batch, mse, steps=5, progress=False, eval_fn=lambda m: 0.0)
    captured = capfd.readouterr()  # file-descriptor level: catches tqdm and warnings too
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_the_loss(capsys):
    train(make_model(), regression_batch, mse, steps=5, progress=True, eval_fn=lambda m: 0.125)
    err = capsys.readouterr().err
    assert "5/5" in err and "loss=" in err and "eval=0.1250" in err


def test_live_plot_outside_ipython_is_a_no_op(capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("no live plot outside a notebook")

    monkeypatch.setattr(training, "_LivePlot", fail)
    before = plt.get_fignums()
    history = train(
        make_model(),
        regression_batch,
        mse,
        steps=5,
        progress=False,
        live_plot=True,
        eval_every=2,
        eval_fn=lambda m: 0.0,
    )
    assert len(history.steps) == 5
    assert plt.get_fignums() == before
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_live_plot_in_a_notebook_updates_one_display(monkeypatch):
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def fake_display(obj, display_id=False):
        assert display_id is True
        shown.append(("display", obj))
        return Handle()

    monkeypatch.setattr(training, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    before = plt.get_fignums()
    train(
        make_model(),
        regression_batch,
        mse,
        steps=40,
        progress=False,
        live_plot=True,
        eval_every=10,
        eval_fn=lambda m: evaluate_loss(m, fixed_val_batch, mse, 1),
    )
    kinds = [kind for kind, _ in shown]
    assert kinds[0] == "display" and kinds.count("display") == 1
    assert kinds[-1] == "update"  # the final state is always drawn
    assert all(isinstance(obj, IPython.display.Image) for _, obj in shown)
    assert shown[-1][1].data[:4] == b"\x89PNG"
    assert plt.get_fignums() == before  # nothing left for the notebook to draw again


def test_log_every_records_window_means_and_the_last_step():
    losses = iter([1.0, 3.0, 5.0, 7.0, 9.0])

    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self):
            return self.w * 0 + next(losses)

    history = train(
        Constant(), lambda s: None, lambda m, b: m(), steps=5, log_every=2, progress=False
    )
    assert history.steps == [2, 4, 5]
    assert history.train_loss == [2.0, 6.0, 9.0]


def test_tokens_are_counted_from_the_first_integer_tensor():
    history = train(
        TokenClassifier(), token_batch, token_loss, steps=4, log_every=2, progress=False
    )
    assert history.tokens_seen == [80, 160]  # 8 x 5 ids per batch
    assert history.tokens_per_second == pytest.approx(160 / history.train_seconds)
    assert 0 < history.train_seconds <= history.seconds

    history = train(make_model(), regression_batch, mse, steps=3, progress=False)
    assert history.tokens_seen == [] and history.tokens_per_second is None

    history = train(
        make_model(), regression_batch, mse, steps=3, progress=False, count_tokens=lambda batch: 10
    )
    assert history.tokens_seen == [10, 20, 30]


def test_count_tokens_default_rule():
    ids = torch.zeros(4, 6, dtype=torch.long)
    assert count_tokens((ids, ids)) == 24
    assert count_tokens({"mask": torch.ones(4, 6, dtype=torch.bool), "x": [ids[:2]]}) == 12
    assert count_tokens((torch.randn(4, 6),)) is None


def test_batches_move_to_the_model_device_keeping_their_structure():
    seen = []

    def loss_fn(model, batch):
        seen.append(batch)
        return mse(model, (batch["pair"][0], batch["pair"][1]))

    def get_batch(step):
        x, y = regression_batch(step)
        return {"pair": [x, y], "note": "kept"}

    train(make_model(), get_batch, loss_fn, steps=1, device="cpu", progress=False)
    assert isinstance(seen[0]["pair"], list) and seen[0]["note"] == "kept"
    assert seen[0]["pair"][0].device.type == "cpu"


def test_own_optimizer_and_torch_scheduler():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    train(
        model,
        regression_batch,
        mse,
        steps=4,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=False,
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)

    other = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(model.parameters(), lr=0.1), 1)
    with pytest.raises(ValueError, match="different optimizer"):
        train(model, regression_batch, mse, steps=1, scheduler=other, progress=False)


def test_scheduler_function_scales_the_learning_rate():
    lrs = []
    model = make_model()

    def loss_fn(m, batch):
        lrs.append(optimizer.param_groups[0]["lr"])
        return mse(m, batch)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    train(
        model,
        regression_batch,
        loss_fn,
        steps=3,
        optimizer=optimizer,
        scheduler=lambda step: 1 / step,
        progress=False,
    )
    assert lrs == pytest.approx([0.2, 0.1, 0.2 / 3])


def test_warmup_cosine():
    f = warmup_cosine(100, warmup=10, min_factor=0.1)
    assert f(1) == pytest.approx(0.1)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.55)
    assert f(100) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))
    assert warmup_cosine(5)(1) < 1.0 + 1e-12
    with pytest.raises(ValueError):
        warmup_cosine(10, warmup=-1)


def test_weight_decay_skips_biases():
    model = make_model()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(1.0)

    def zero_loss(m, batch):
        return (m.weight.sum() + m.bias.sum()) * 0.0

    train(model, regression_batch, zero_loss, steps=5, lr=0.1, weight_decay=0.5, progress=False)
    assert model.bias.item() == 1.0  # zero gradient, no decay: unchanged


def test_evaluate_loss_is_a_mean_and_restores_mode():
    model = make_model()
    model.train()
    expected = sum(mse(model, fixed_val_batch(i)).item() for i in range(3)) / 3
    assert evaluate_loss(model, fixed_val_batch, mse, 3) == pytest.approx(expected)
    assert model.training
    with pytest.raises(ValueError, match="n_batches"):
        evaluate_loss(model, fixed_val_batch, mse, 0)


def test_history_plot_draws_one_line_per_series():
    history = train(make_model(), regression_batch, mse, steps=6, progress=False)
    ax = history.plot()
    assert len(ax.get_lines()) == 1
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"

    history = train(
        make_model(),
        regression_batch,
        mse,
        steps=6,
        eval_every=3,
        eval_fn=lambda m: 1.0,
        progress=False,
    )
    fig, ax = plt.subplots()
    returned = history.plot(ax, title="run", log_y=True)
    assert returned is ax
    assert [line.get_label() for line in ax.get_lines()] == ["train", "eval"]
    assert ax.get_title() == "run" and ax.get_yscale() == "log"


def test_history_as_dict_round_trips_through_json():
    history = train(
        TokenClassifier(), token_batch, token_loss, steps=4, eval_fn=lambda m: 2.0, progress=False
    )
    data = json.loads(json.dumps(history.as_dict()))
    assert set(data) >= {
        "steps",
        "train_loss",
        "eval_steps",
        "eval_loss",
        "tokens_seen",
        "seconds",
        "tokens_per_second",
    }
    assert data["eval_loss"] == [2.0]
    again = History.from_dict(data)
    assert again.train_loss == history.train_loss
    assert math.isclose(again.tokens_per_second, history.tokens_per_second)
    assert "steps=4" in repr(history) and "eval_loss=2" in repr(history)


def test_max_steps_caps_training(monkeypatch):
    import torch

    from course_utils.training import train

    model = torch.nn.Linear(2, 1)
    batch = (torch.ones(4, 2), torch.zeros(4, 1))

    def loss(m, b):
        return torch.nn.functional.mse_loss(m(b[0]), b[1])

    monkeypatch.setenv("COURSE_MAX_STEPS", "3")
    history = train(model, lambda s: batch, loss, steps=50, progress=False)
    assert history.steps == [1, 2, 3]
    monkeypatch.delenv("COURSE_MAX_STEPS")
    assert len(train(model, lambda s: batch, loss, steps=5, progress=False).steps) == 5
