"""Dataset entries: each loads a deterministic split (uint8 NCHW images, 2D points, or the two domains of a
translation task) with a sha256 of its content. Importing this package registers every built-in dataset:

- ``ganbench.data.core``: ``Split``, ``load``, MNIST, the 8x8 digits, Stacked MNIST, the 2D toy sets, image folders;
- ``ganbench.data.translation``: paired and unpaired translation tasks and the pix2pix/CycleGAN/Hub layouts;
- ``ganbench.data.superres``: the x4 super-resolution sets;
- ``ganbench.data.standard``: the published datasets GAN papers report on (CIFAR-10/100, STL-10, SVHN, CelebA, LSUN,
  Fashion-MNIST, FFHQ, AFHQ, Hugging Face Hub image sets as ``hf:OWNER/NAME[:split]``), read in their own formats.
"""

from ganbench.data import standard, superres, translation  # noqa: F401  (register their datasets)
from ganbench.data.core import (IMAGE_SUFFIXES, TOY_SETS, Split, data_root, digits8, grid25, grid25_modes, image_folder,
                                load, mnist, resize_images, ring8, ring8_modes, stacked_mnist, stratified_split)

__all__ = ["IMAGE_SUFFIXES", "Split", "TOY_SETS", "data_root", "digits8", "grid25", "grid25_modes", "image_folder",
           "load", "mnist", "resize_images", "ring8", "ring8_modes", "stacked_mnist", "stratified_split"]
