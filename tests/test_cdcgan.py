"""The class-conditional DCGAN: conditioning by one-hot concatenation, the sampling contract, clear errors."""

import pytest
import torch

from ganbench.zoo import to_uint8
from ganbench.zoo.cdcgan import CDCGAN, CDCGANConfig, CDCGANDiscriminator, CDCGANGenerator, ConditionalGenerator
from ganbench.zoo.dcgan import DCGANConfig, DCGANGenerator

CFG = CDCGANConfig(resolution=32, channels=1, nz=8, n_classes=4, ngf=8, ndf=8)


def test_the_label_enters_as_one_hot_inputs_of_a_dcgan_trunk():
    torch.manual_seed(0)
    G = CDCGANGenerator(CFG).eval()
    # oracle: a plain DCGAN with nz + n_classes inputs and the same weights, fed [z, one_hot(label)]
    trunk = DCGANGenerator(DCGANConfig(32, 1, CFG.nz + CFG.n_classes, 8, 8)).eval()
    trunk.load_state_dict(G.state_dict(), strict=True)
    z, labels = torch.randn(5, 8), torch.tensor([0, 3, 1, 2, 3])
    x = torch.cat([z, torch.eye(4)[labels]], dim=1)
    with torch.no_grad():
        assert torch.equal(G(z, labels), trunk(x))
    assert CDCGANDiscriminator(CFG)(torch.randn(5, 1, 32, 32), labels).shape == (5,)


def test_dropout_sits_after_the_first_block_only_when_asked():
    with_dropout = CDCGANGenerator(CDCGANConfig(resolution=128, channels=3, n_classes=8, dropout=0.2))
    assert isinstance(with_dropout.main[3], torch.nn.Dropout) and with_dropout.main[3].p == 0.2
    assert not any(isinstance(m, torch.nn.Dropout) for m in CDCGANGenerator(CFG).modules())


def test_sampling_is_balanced_and_independent_of_the_batch_size():
    torch.manual_seed(0)
    gen = ConditionalGenerator(CDCGAN, CFG, CDCGANGenerator(CFG))
    a, b = gen.sample(10, seed=4), gen.sample(10, seed=4, batch_size=3)
    assert a.dtype == torch.uint8 and a.shape == (10, 1, 32, 32) and torch.equal(a, b)
    z = torch.randn(10, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(a, to_uint8(gen.net(z, torch.arange(10) % 4)))
    assert not torch.equal(gen.sample(4, 4, labels=torch.tensor([1, 1, 1, 1])), a[:4])


def test_bad_labels_and_configs_are_refused_clearly():
    G = CDCGANGenerator(CFG)
    with pytest.raises(ValueError, match="needs class labels"):
        G(torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got \[0, 4\]"):
        G(torch.randn(2, 8), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="1-D integer"):
        G(torch.randn(2, 8), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="resolution must be 32, 64 or 128"):
        CDCGANConfig(resolution=48)
    with pytest.raises(ValueError, match="dropout"):
        CDCGANConfig(dropout=1.0)
