"""Data sets for training and evaluating UNIT: digit sets, emoji, unpaired image folders.

Every image this package hands out is a float tensor ``[C, S, S]`` (or a batch
``[N, C, S, S]``) in ``[-1, 1]``. Every Dataset's item is ``(image, label)``: the
class for digits, the file's index for emoji and folders, so one training loop
can take any of them.

Nothing here downloads. Files are read from a data root (``root=`` argument, else
``default_data_root()``) laid out as::

    mnist/mnist.npz                      or  MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    usps/zip.train.gz, usps/zip.test.gz  or  usps/usps.bz2, usps/usps.t.bz2 (or at the root)
    bsds500/train/*.jpg                  (for MNIST-M, built here and cached)
    emoji/google/64/*.png, emoji/twitter/64/*.png

One module per concern, each name below importable from here: ``roots`` (the data root, the
expected layout, the missing-file error), ``digit_files`` (the MNIST idx and USPS parsers),
``mnistm`` (MNIST-M synthesis and its cache), ``emoji`` (the emoji split and styles),
``arrays`` (the in-memory Dataset the digit and emoji sets build on), ``digits`` (the digit
Dataset), ``folders`` (a folder of the user's images), ``registry`` (a domain by name).
"""

from .arrays import ArrayImageDataset, resize_batch
from .digit_files import DEFAULT_DIGIT_SIZE, load_mnist_arrays, load_usps_arrays, read_idx
from .digits import DIGIT_DOMAINS, DigitDataset
from .emoji import (
    DEFAULT_EMOJI_SIZE,
    EMOJI_STYLES,
    EMOJI_TEST_EVERY,
    EmojiDataset,
    composite_on_white,
    emoji_names,
    emoji_pairs,
    load_emoji_arrays,
)
from .folders import DEFAULT_FOLDER_SIZE, IMAGE_EXTENSIONS, ImageFolderDataset
from .mnistm import (
    MNISTM_FORMAT_VERSION,
    build_mnistm,
    default_mnistm_cache_dir,
    list_bsds_images,
    load_mnistm_arrays,
    mnistm_cache_path,
)
from .registry import DOMAIN_NAMES, load_domain
from .roots import SPLITS, default_data_root

__all__ = [
    "ArrayImageDataset", "DEFAULT_DIGIT_SIZE", "DEFAULT_EMOJI_SIZE", "DEFAULT_FOLDER_SIZE", "DIGIT_DOMAINS",
    "DOMAIN_NAMES", "DigitDataset", "EMOJI_STYLES", "EMOJI_TEST_EVERY", "EmojiDataset", "IMAGE_EXTENSIONS",
    "ImageFolderDataset", "MNISTM_FORMAT_VERSION", "SPLITS", "build_mnistm", "composite_on_white",
    "default_data_root", "default_mnistm_cache_dir", "emoji_names", "emoji_pairs", "list_bsds_images",
    "load_domain", "load_emoji_arrays", "load_mnist_arrays", "load_mnistm_arrays", "load_usps_arrays",
    "mnistm_cache_path", "read_idx", "resize_batch",
]
