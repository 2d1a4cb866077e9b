"""Give a saved pair a frame scale (and the fill of what a shrunk translation uncovers) after
training, keeping its weights and its other metadata.

    python bench/set_frame_scale.py weights/emoji-google-twitter 1.0592 "NOTE"   # what the bundled emoji pair got
    python bench/set_frame_scale.py FOLDER 1.0592 "NOTE" --fill-a '#ffffff' --fill-b '#ffffff'
"""
import argparse
import dataclasses
from pathlib import Path

from unit_nodes.core.weights import base_metadata, load_model, read_safetensors, save_model

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("folder", type=Path)
p.add_argument("scale", type=float, help="config.frame_scale")
p.add_argument("note", help="kept in the file's metadata as frame_scale_note")
p.add_argument("--fill-a", help="config.frame_fill_a ('#rrggbb'; '' for each image's border colour); unchanged if left out")
p.add_argument("--fill-b", help="config.frame_fill_b, the same for domain B")
args = p.parse_args()

_, meta = read_safetensors(args.folder / "model.safetensors")
model = load_model(args.folder, discriminators=False)
changes = dict(frame_scale=args.scale)
for name, value in (("frame_fill_a", args.fill_a), ("frame_fill_b", args.fill_b)):
    if value is not None:
        changes[name] = value
model.config = dataclasses.replace(model.config, **changes)  # validated: a bad colour is refused here
# everything save_model writes itself (format, config, kind, discriminators) is left to it
written = {*base_metadata(model.config, "model"), "discriminators"}
kept = {k: v for k, v in meta.items() if k not in written}
kept["frame_scale_note"] = args.note
save_model(model, args.folder, include_discriminators=False, metadata=kept)
config = load_model(args.folder).config
print(config.frame_scale, config.frame_fill_a, config.frame_fill_b, read_safetensors(args.folder / "model.safetensors")[1].keys())
