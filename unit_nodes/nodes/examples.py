"""The pack's example images, put where the shipped workflows' Load Image nodes look for them."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import folder_paths

from ..core.weights import atomic_write

EXAMPLE_INPUTS = Path(__file__).resolve().parents[2] / "workflows" / "inputs"


def install_example_inputs() -> list[Path]:
    """Copy workflows/inputs/*.png into ComfyUI's input directory, so that every shipped workflow
    runs on a fresh install. A file of the same name already there is never replaced; a folder
    that cannot be written only costs the examples (logged), never the pack."""
    target = Path(folder_paths.get_input_directory())
    copied = []
    for source in sorted(EXAMPLE_INPUTS.glob("*.png")):
        destination = target / source.name
        if destination.exists():
            continue
        try:
            copied.append(atomic_write(destination, lambda tmp, source=source: shutil.copyfile(source, tmp)))
        except OSError as exc:
            logging.warning("unit-nodes: could not copy the example image %s into %s: %s", source.name, target, exc)
    if copied:
        logging.info("unit-nodes: copied %d example images for the shipped workflows into %s", len(copied), target)
    return copied
