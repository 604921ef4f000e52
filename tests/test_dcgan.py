"""DCGAN's architecture against the reference PyTorch implementation's published numbers."""

import torch

from ganbench.zoo.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_dcgan64_parameter_counts_match_the_pytorch_reference():
    # pytorch/tutorials "DCGAN Tutorial" (nz=100, ngf=ndf=64, nc=3): G 3,576,704 and D 2,765,568 parameters
    cfg = DCGANConfig(resolution=64, channels=3, nz=100, ngf=64, ndf=64)
    assert n_params(DCGANGenerator(cfg)) == 3_576_704
    assert n_params(DCGANDiscriminator(cfg)) == 2_765_568


def test_dcgan_layers_follow_the_paper():
    cfg = DCGANConfig(resolution=32, channels=1, ngf=16, ndf=16)
    G, D = DCGANGenerator(cfg), DCGANDiscriminator(cfg)
    assert G(torch.randn(4, 100)).shape == (4, 1, 32, 32)
    assert D(torch.randn(4, 1, 32, 32)).shape == (4,)
    d_layers = list(D.main)
    assert isinstance(d_layers[0], torch.nn.Conv2d) and isinstance(d_layers[1], torch.nn.LeakyReLU)  # no BN on input
    assert d_layers[1].negative_slope == 0.2
    assert isinstance(list(G.main)[-1], torch.nn.Tanh)
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert abs(convs[1].weight.std().item() - 0.02) < 0.002  # N(0, 0.02) init
