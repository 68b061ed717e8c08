"""Losses of IDFF, I-CFM, OT-CFM and SB-CFM recomputed by hand (METHOD.md sections 2 and 6).

``Method.loss`` draws, from the one generator it is given and in this order: the coupling's
pair indices (OT couplings only), then t ~ U[t_min, 1 - t_min) with shape (B,), then eps with
the data's shape. The hand computations re-draw them from a generator with the same seed.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from idff.flows.couplings import couple, ot_plan
from idff.flows.methods import ICFM, IDFF, OTCFM, SBCFM, build_method

SHAPES = [(16, 2), (6, 3, 4, 4)]
SEED = 1234


class Stub(nn.Module):
    """A known function of the inputs: head k = (k + 1) * 0.3 * x * (1 + t) - 0.1 * k."""

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def forward(self, x, t, cond=None):
        self.calls.append((x, t, cond))
        return torch.cat([self.head(k, x, t) for k in range(self.n_heads)], dim=1)

    @staticmethod
    def head(k: int, x, t):
        tb = t.reshape(-1, *([1] * (x.dim() - 1)))
        return (k + 1) * 0.3 * x * (1 + tb) - 0.1 * k


def _data(shape, shift=None):
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64)
    x1 = x0 + shift if shift is not None else 2 + torch.randn(shape, generator=g, dtype=torch.float64)
    return x0, x1


def _bc(t, x):
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def _draw(g, x1, t_min=0.0):
    t = torch.rand(x1.shape[0], generator=g, dtype=x1.dtype)
    if t_min > 0:
        t = t_min + (1 - 2 * t_min) * t
    eps = torch.randn(x1.shape, generator=g, dtype=x1.dtype)
    return t, eps


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.1, 0.2, 1.0])
@pytest.mark.parametrize("score_target", ["eps", "x0"])
@pytest.mark.parametrize("w_flow", [2.0, 0.5])
def test_idff_loss_by_hand(shape, sigma, score_target, w_flow):
    x0, x1 = _data(shape)
    method = build_method("idff", sigma=sigma, w_flow=w_flow, score_target=score_target)
    model = Stub(2)
    out = method.loss(model, x0, x1, generator=torch.Generator().manual_seed(SEED))

    t, eps = _draw(torch.Generator().manual_seed(SEED), x1)
    tb = _bc(t, x1)
    sigma_t = sigma * torch.sqrt(tb * (1 - tb))
    xt = tb * x1 + (1 - tb) * x0 + sigma_t * eps
    x1_hat, s_hat = Stub.head(0, xt, t), Stub.head(1, xt, t)
    lam = 2 * sigma_t / sigma**2
    target = eps if score_target == "eps" else x0
    flow = ((x1_hat - x1) ** 2).mean()
    score = ((lam * s_hat + target) ** 2).mean()
    torch.testing.assert_close(model.calls[0][0], xt, rtol=0, atol=1e-13)
    torch.testing.assert_close(model.calls[0][1], t, rtol=0, atol=0)
    torch.testing.assert_close(out.loss, w_flow * flow + score, rtol=1e-12, atol=1e-12)
    assert out.parts["flow"] == pytest.approx(flow.item(), rel=1e-12)
    assert out.parts["score"] == pytest.approx(score.item(), rel=1e-12)


def test_idff_lambda_t():
    method = IDFF(sigma=0.2)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    torch.testing.assert_close(method.lambda_t(t), 2 * 0.2 * torch.sqrt(t * (1 - t)) / 0.04)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5])
def test_icfm_loss_by_hand(shape, sigma):
    x0, x1 = _data(shape)
    model = Stub(1)
    out = ICFM(sigma=sigma).loss(model, x0, x1, generator=torch.Generator().manual_seed(SEED))
    t, eps = _draw(torch.Generator().manual_seed(SEED), x1)
    tb = _bc(t, x1)
    xt = tb * x1 + (1 - tb) * x0 + sigma * eps  # constant sigma
    hand = ((Stub.head(0, xt, t) - (x1 - x0)) ** 2).mean()
    torch.testing.assert_close(out.loss, hand, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", [ICFM, OTCFM])
def test_cfm_target_is_x1_minus_x0(shape, cls):
    x0, x1 = _data(shape)
    t = torch.rand(shape[0], dtype=torch.float64)
    xt, eps = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    out = torch.randn(shape, dtype=torch.float64)
    res = cls(sigma=0.1).regress(out, x0, x1, t, xt, eps)
    torch.testing.assert_close(res.loss, ((out - (x1 - x0)) ** 2).mean())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.1, 0.2, 1.0])
def test_sbcfm_target_formula(shape, sigma):
    x0, x1 = _data(shape)
    t = torch.linspace(0.05, 0.95, shape[0], dtype=torch.float64)
    eps = torch.randn(shape, dtype=torch.float64)
    tb = _bc(t, x1)
    mu = tb * x1 + (1 - tb) * x0
    xt = mu + sigma * torch.sqrt(tb * (1 - tb)) * eps
    u = (1 - 2 * tb) / (2 * tb * (1 - tb)) * (xt - mu) + (x1 - x0)
    out = torch.randn(shape, dtype=torch.float64)
    res = SBCFM(sigma=sigma).regress(out, x0, x1, t, xt, eps)
    torch.testing.assert_close(res.loss, ((out - u) ** 2).mean(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.1, 0.3])
def test_sbcfm_full_loss_by_hand_with_its_sinkhorn_coupling(sigma):
    x0, x1 = _data((32, 2))
    method = SBCFM(sigma=sigma)
    assert method.ot_reg == pytest.approx(2 * sigma**2) and method.coupling == "sinkhorn"
    model = Stub(1)
    out = method.loss(model, x0, x1, generator=torch.Generator().manual_seed(SEED))
    g = torch.Generator().manual_seed(SEED)
    a, b = couple(x0, x1, "sinkhorn", generator=g, reg=2 * sigma**2)  # drawn first
    t, eps = _draw(g, b, t_min=method.t_min)
    assert t.min() >= method.t_min and t.max() <= 1 - method.t_min
    tb = _bc(t, b)
    mu = tb * b + (1 - tb) * a
    xt = mu + sigma * torch.sqrt(tb * (1 - tb)) * eps
    u = (1 - 2 * tb) / (2 * tb * (1 - tb)) * (xt - mu) + (b - a)
    torch.testing.assert_close(out.loss, ((Stub.head(0, xt, t) - u) ** 2).mean(),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_ot_pairs_a_shifted_batch_with_itself(shape):
    numel = torch.Size(shape[1:]).numel()
    shift = 0.05 * torch.linspace(-1, 1, numel, dtype=torch.float64).reshape(1, *shape[1:])
    x0, x1 = _data(shape, shift=shift)
    plan = ot_plan(x0, x1, "exact_ot")
    n = shape[0]
    assert torch.allclose(torch.as_tensor(plan), torch.eye(n, dtype=torch.float64) / n, atol=1e-12)
    a, b = couple(x0, x1, "exact_ot", generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(b - a, (x1 - x0), rtol=0, atol=1e-12)  # every row differs by c
    # OT-CFM's regression target is then the shift itself, whatever pairs were drawn
    model = Stub(1)
    res = OTCFM().loss(model, x0, x1, generator=torch.Generator().manual_seed(SEED))
    g = torch.Generator().manual_seed(SEED)
    a, b = couple(x0, x1, "exact_ot", generator=g)
    t, _ = _draw(g, b)
    torch.testing.assert_close(res.loss, ((Stub.head(0, model.calls[0][0], t) - (x1 - x0)) ** 2).mean())
    torch.testing.assert_close(model.calls[0][0], _bc(t, b) * b + (1 - _bc(t, b)) * a)


def test_exact_ot_undoes_a_permutation():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(24, 2, generator=g, dtype=torch.float64)
    perm = torch.randperm(24, generator=g)
    x1 = x0[perm] + 0.01
    a, b = couple(x0, x1, "exact_ot", generator=g)
    torch.testing.assert_close(b - a, torch.full_like(a, 0.01), rtol=0, atol=1e-12)


def test_time_series_pairs_are_never_repaired():
    x0, x1 = _data((16, 2))
    cond = torch.arange(16)
    for method in (OTCFM(), SBCFM(0.2), IDFF(0.2, coupling="exact_ot")):
        g = torch.Generator().manual_seed(SEED)
        a, b = method.pair(x0, x1, cond, g)
        assert a is x0 and b is x1
        assert torch.equal(g.get_state(), torch.Generator().manual_seed(SEED).get_state())
        model = Stub(method.n_heads)
        method.loss(model, x0, x1, cond, generator=torch.Generator().manual_seed(SEED))
        t, eps = _draw(torch.Generator().manual_seed(SEED), x1, method.t_min)
        torch.testing.assert_close(model.calls[0][0], method.path.sample_xt(x0, x1, t, eps))
        assert model.calls[0][2] is cond


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown method 'foo'; valid: idff, icfm, otcfm, sbcfm"):
        build_method("foo")
    with pytest.raises(ValueError, match="valid: independent, exact_ot, sinkhorn"):
        build_method("idff", coupling="greedy")
    with pytest.raises(ValueError, match="unknown score_target 'x1'; valid: eps, x0"):
        build_method("idff", score_target="x1")
    with pytest.raises(ValueError, match="bad parameters for method 'icfm'"):
        build_method("icfm", w_flow=2.0)
    with pytest.raises(ValueError, match="valid: independent, exact_ot, sinkhorn"):
        couple(torch.zeros(4, 2), torch.zeros(4, 2), "greedy")
    with pytest.raises(ValueError, match="sigma > 0"):
        build_method("idff", sigma=0.0)
    with pytest.raises(ValueError, match="sigma > 0"):
        build_method("sbcfm", sigma=0.0)


def test_method_table():
    assert [build_method(n).n_heads for n in ("idff", "icfm", "otcfm", "sbcfm")] == [2, 1, 1, 1]
    assert [build_method(n).coupling for n in ("idff", "icfm", "otcfm", "sbcfm")] == [
        "independent", "independent", "exact_ot", "sinkhorn"]
