"""Training the class-conditional DCGAN through its zoo step (``ganbench.zoo.cdcgan.conditional_step``): the losses
and updates of one step against the conditional GAN objective written out, labels to the right player, exact
resume."""

import pytest
import torch

from ganbench.data import Split
from ganbench.train.loop import TrainConfig, train
from ganbench.zoo.base import StepContext, TrainState
from ganbench.zoo.cdcgan import CDCGAN, CDCGANConfig, CDCGANDiscriminator, CDCGANGenerator, conditional_step

ENTRY = CDCGAN
SMALL = {"resolution": 32, "channels": 1, "nz": 8, "n_classes": 2, "ngf": 8, "ndf": 8}


def bright_and_dark(n: int = 256) -> Split:
    """Class 0: dark noise images (0..60); class 1: bright ones (195..255)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    low = torch.where(labels == 1, 195, 0)[:, None, None, None]
    images = (low + torch.randint(0, 61, (n, 1, 32, 32), generator=g)).to(torch.uint8)
    return Split("bright_dark", "train", images, labels, "none", "generated (seeded) in the test")


def _context(G, D, opt_g, opt_d, real, labels, generator, cfg) -> StepContext:
    batch = {"real": real} if labels is None else {"real": real, "labels": labels}
    return StepContext(TrainState({"G": G, "D": D}, {"opt_g": opt_g, "opt_d": opt_d}), batch, 0, generator, cfg,
                       TrainConfig())


def test_the_registered_entry_trains_through_the_conditional_step():
    assert CDCGAN.step_function() is conditional_step and CDCGAN.task == "class_conditional"


def test_resumed_training_equals_uninterrupted(tmp_path):
    data = bright_and_dark(64)
    cfg = {**SMALL, "resolution": 32}
    whole = train(ENTRY, data, tmp_path / "a", TrainConfig(steps=4, batch_size=4, checkpoint_every=4), cfg,
                  progress=False)
    train(ENTRY, data, tmp_path / "b", TrainConfig(steps=2, batch_size=4, checkpoint_every=2), cfg, progress=False)
    torch.manual_seed(999)  # a resumed step must not read the global random state
    resumed = train(ENTRY, data, tmp_path / "b", TrainConfig(steps=4, batch_size=4, checkpoint_every=2), cfg,
                    resume=True, progress=False)
    for (k, a), (_, b) in zip(whole.generator.net.state_dict().items(), resumed.generator.net.state_dict().items()):
        assert torch.equal(a, b), k
    header = (tmp_path / "a" / "losses.csv").read_text().splitlines()[0]
    assert header == "step,loss_d,loss_g,d_real,d_fake"


def test_one_step_follows_the_conditional_gan_losses():
    torch.manual_seed(0)
    cfg = CDCGANConfig(**SMALL)
    G, D = CDCGANGenerator(cfg), CDCGANDiscriminator(cfg)
    G0, D0 = type(G)(cfg), type(D)(cfg)
    G0.load_state_dict(G.state_dict())
    D0.load_state_dict(D.state_dict())
    opt_g, opt_d = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (G, D))
    real, labels = torch.rand(4, 1, 32, 32) * 2 - 1, torch.tensor([0, 1, 1, 0])
    row = conditional_step(_context(G, D, opt_g, opt_d, real, labels, torch.Generator().manual_seed(7), cfg))

    # oracle: the same draws from the same seeded generator, the losses written out with logsigmoid
    g = torch.Generator().manual_seed(7)
    z, fake_labels = torch.randn(4, 8, generator=g), torch.randint(2, (4,), generator=g)
    fake = G0(z, fake_labels)
    ls = torch.nn.functional.logsigmoid
    d_real, d_fake = D0(real, labels), D0(fake, fake_labels)
    expected_d = -(ls(d_real).mean() + ls(-d_fake).mean())
    assert row["loss_d"] == pytest.approx(expected_d.item(), rel=1e-5)
    assert row["d_real"] == pytest.approx(d_real.mean().item(), rel=1e-5)
    # D moved by one SGD step on exactly that loss
    expected_d.backward()
    with torch.no_grad():
        for (k, p0), p in zip(D0.named_parameters(), D.parameters()):
            assert torch.allclose(p, p0 - 0.1 * p0.grad, atol=1e-6), k
    # G's loss is -log D(G(z|y')|y') under the updated D
    with torch.no_grad():
        expected_g = -ls(D(G0(z, fake_labels), fake_labels)).mean()
    assert row["loss_g"] == pytest.approx(expected_g.item(), rel=1e-4)


def test_a_split_without_labels_is_refused_clearly():
    cfg = CDCGANConfig(**SMALL)
    G, D = CDCGANGenerator(cfg), CDCGANDiscriminator(cfg)
    ctx = _context(G, D, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()),
                   torch.zeros(2, 1, 32, 32), None, torch.Generator(), cfg)
    with pytest.raises(ValueError, match="labelled dataset"):
        conditional_step(ctx)
