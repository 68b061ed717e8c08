"""The ADM UNet: reference parameter count, shapes, time/condition dependence, bf16, odd sizes."""

import pytest
import torch

from idff.models.unet import UNet, count_parameters

TINY = dict(model_channels=32, num_head_channels=16, dropout=0.0)


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Re-draw every parameter (the zero-initialised output layers would hide any dependence)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def test_cifar_config_has_the_reference_parameter_count():
    # DDPM's / torchcfm's 128-channel [1, 2, 2, 2] CIFAR-10 UNet has 35,746,307 parameters
    model = UNet(3, 3, 32, channel_mult=(1, 2, 2, 2))
    assert count_parameters(model) == 35_746_307
    assert model.attention_sides == [16, 16]


@pytest.mark.parametrize("heads", [1, 2])
def test_cifar_shapes(heads):
    model = UNet(3, 3 * heads, 32, channel_mult=(1, 2, 2, 4), **TINY)
    assert model.attention_sides == [16, 16]
    out = model(torch.randn(2, 3, 32, 32), torch.rand(2))
    assert out.shape == (2, 3 * heads, 32, 32)


def test_celeba64_shapes():
    model = UNet(3, 2 * 3, 64, channel_mult=(1, 2, 2, 4, 4), **TINY)
    assert model.attention_sides == [16, 16]
    assert model.lowest_size == (4, 4)
    assert model(torch.randn(2, 3, 64, 64), 0.3).shape == (2, 6, 64, 64)


def test_sst_60x60_conditional_shapes():
    model = UNet(1, 2 * 1, 60, n_cond=7, channel_mult=(1, 2, 4), **TINY)
    assert model.lowest_size == (15, 15)  # 60 -> 30 -> 15
    assert model.attention_sides == []  # 16 is never reached, as in the reference setup
    out = model(torch.randn(3, 1, 60, 60), torch.rand(3), torch.tensor([0, 3, 6]))
    assert out.shape == (3, 2, 60, 60)


def test_odd_sizes_round_trip():
    model = UNet(2, 4, (15, 21), channel_mult=(1, 2, 2), **TINY)
    assert model.lowest_size == (4, 6)  # 15 -> 8 -> 4, 21 -> 11 -> 6
    assert model(torch.randn(1, 2, 15, 21), 0.5).shape == (1, 4, 15, 21)


def test_output_starts_at_zero():
    model = UNet(3, 6, 32, channel_mult=(1, 2), **TINY)
    assert torch.count_nonzero(model(torch.randn(2, 3, 32, 32), 0.4)) == 0


def test_time_dependence_and_per_sample_times():
    model = _randomise(UNet(3, 6, 16, channel_mult=(1, 2), attention_resolutions=(8,), **TINY))
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        a, b = model(x, 0.2), model(x, 0.7)
        assert not torch.allclose(a, b, atol=1e-4)
        assert torch.equal(a, model(x, torch.full((3,), 0.2)))
        t = torch.tensor([0.1, 0.5, 0.9])
        batched = model(x, t)
        single = torch.cat([model(x[i:i + 1], t[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_condition_dependence_and_errors():
    model = _randomise(UNet(1, 2, 12, channel_mult=(1, 2), n_cond=4, **TINY))
    x = torch.randn(2, 1, 12, 12)
    with torch.no_grad():
        assert not torch.allclose(model(x, 0.5, torch.tensor([0, 1])),
                                  model(x, 0.5, torch.tensor([2, 3])), atol=1e-4)
    with pytest.raises(ValueError, match="conditional"):
        model(x, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        model(x, 0.5, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer tensor"):
        model(x, 0.5, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="n_cond=0"):
        UNet(1, 2, 12, channel_mult=(1, 2), **TINY)(x, 0.5, torch.tensor([0, 1]))


def test_bad_inputs_and_configs_are_named():
    model = UNet(3, 6, 16, channel_mult=(1, 2), **TINY)
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        model(torch.randn(2, 3, 32, 32), 0.5)
    with pytest.raises(ValueError, match="one time per sample"):
        model(torch.randn(2, 3, 16, 16), torch.rand(3))
    with pytest.raises(ValueError, match="GroupNorm"):
        UNet(3, 6, 16, model_channels=24, channel_mult=(1, 2))
    with pytest.raises(ValueError, match="num_head_channels"):
        UNet(3, 6, 16, model_channels=32, num_head_channels=48, channel_mult=(1, 2))


def test_bf16_autocast_and_channels_last_train_step():
    model = _randomise(UNet(3, 6, 16, channel_mult=(1, 2), attention_resolutions=(8,),
                            model_channels=32, num_head_channels=16, dropout=0.1)).train()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 16, 16).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, torch.rand(2))
    assert out.dtype == torch.float32 and out.shape == (2, 6, 16, 16)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
