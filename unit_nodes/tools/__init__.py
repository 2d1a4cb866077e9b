"""Development tools over the core: evaluation (digit adaptation accuracy, emoji FID/KID),
benchmarks and the digit classifier. The CLI's eval/bench commands use them; the ComfyUI
nodes never import this package."""
