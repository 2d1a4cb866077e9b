"""The UNIT engine in pure PyTorch: config, networks, losses, trainer, weights, inference.

Nothing here imports ComfyUI.
"""

from .config import PRESETS, ConfigError, UNITConfig, preset
from .networks import UNIT

__all__ = ["PRESETS", "ConfigError", "UNITConfig", "UNIT", "preset"]
