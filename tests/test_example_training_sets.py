"""The example training sets shipped in workflows/inputs/ (what Train UNIT reads as
examples/emoji-google and examples/emoji-twitter): training-split emoji only, unmodified, licensed."""
from pathlib import Path

import pytest
from PIL import Image

from unit_nodes.core.data import ImageFolderDataset, emoji_names

INPUTS = Path(__file__).resolve().parent.parent / "workflows" / "inputs"
STYLES = ("google", "twitter")


def pngs(style: str) -> list[Path]:
    return sorted((INPUTS / f"emoji-{style}").iterdir())


@pytest.mark.parametrize("style", STYLES)
def test_each_set_is_a_few_dozen_64px_images_the_trainer_reads(style):
    files = pngs(style)
    assert 24 <= len(files) <= 64
    assert all(f.suffix == ".png" for f in files), "only images: anything else is skipped with a warning"
    for f in files:
        with Image.open(f) as img:
            assert img.size == (64, 64), f
    dataset = ImageFolderDataset(INPUTS / f"emoji-{style}", size=64, channels=3)
    assert len(dataset) == len(files)


@pytest.mark.parametrize("style", STYLES)
def test_sets_hold_only_training_split_emoji_unmodified(style):
    try:
        train, test = set(emoji_names(style, "train")), set(emoji_names(style, "test"))
    except FileNotFoundError as exc:
        pytest.skip(f"the emoji data set is not on this machine: {exc}")
    from unit_nodes.core.data.emoji import _emoji_folder
    from unit_nodes.core.data.roots import resolve_root

    source = _emoji_folder(style, resolve_root(None))
    names = {f.name for f in pngs(style)}
    assert names <= train and not names & test
    for f in pngs(style):
        assert f.read_bytes() == (source / f.name).read_bytes(), f"{f} differs from the licensed original"


def test_both_domains_and_their_licences_are_stated():
    assert [f.name for f in pngs("google")] == [f.name for f in pngs("twitter")]
    readme = " ".join((INPUTS / "README.md").read_text().split())
    for needed in ("Apache License, Version 2.0", "CC-BY 4.0", "Copyright Twitter, Inc and other contributors",
                   "examples/emoji-google", "examples/emoji-twitter", "training** split"):
        assert needed in readme, needed
    assert "Apache License" in (INPUTS / "LICENSE-Apache-2.0.txt").read_text()
