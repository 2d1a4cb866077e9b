"""unit-nodes: UNIT image-to-image translation (Liu, Breuel & Kautz, NIPS 2017) for ComfyUI.

``unit_nodes.core`` is plain PyTorch and never imports ComfyUI; ``unit_nodes.nodes`` holds
the thin ComfyUI adapters.
"""

__version__ = "0.1.0"
