"""Give a saved pair a frame scale after training, keeping its weights and its other metadata.

    python bench/set_frame_scale.py weights/emoji-google-twitter 1.0592 "NOTE"   # what the bundled emoji pair got
"""
import dataclasses
import sys
from pathlib import Path

from unit_nodes.core.weights import base_metadata, load_model, read_safetensors, save_model

folder, scale, note = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
_, meta = read_safetensors(folder / "model.safetensors")
model = load_model(folder, discriminators=False)
model.config = dataclasses.replace(model.config, frame_scale=scale)
# everything save_model writes itself (format, config, kind, discriminators) is left to it
written = {*base_metadata(model.config, "model"), "discriminators"}
kept = {k: v for k, v in meta.items() if k not in written}
kept["frame_scale_note"] = note
save_model(model, folder, include_discriminators=False, metadata=kept)
print(load_model(folder).config.frame_scale, read_safetensors(folder / "model.safetensors")[1].keys())
