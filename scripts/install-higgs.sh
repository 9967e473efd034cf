#!/usr/bin/env bash
# Install Higgs Audio v2 (boson-multimodal 0.1.1) into a Python environment beside what is already there.
#
#   bash scripts/install-higgs.sh .venv/bin/python
#
# Why not plain `pip install boson-multimodal`: its declared dependencies pull CUDA builds of torchaudio and
# torchvision (torchvision breaks `import transformers` on a CPU machine, torchaudio's extension fails to load
# beside another torch), protobuf<3.20 (through descript-audiotools) and ruff==0.12.2. So this script
#   1. installs what boson-multimodal really imports: the `higgs` extra of pyproject.toml, with torch pinned to
#      the version already installed (pip must never swap in another torch build);
#   2. installs boson-multimodal, descript-audio-codec and descript-audiotools with --no-deps;
#   3. checks that the engine imports (voicechat stands in for torchaudio.functional.resample at run time).
# It is idempotent: when everything is already at the pinned versions it only runs the import check.
set -euo pipefail

PYTHON="${1:?usage: bash scripts/install-higgs.sh PATH/TO/python}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NO_DEPS=(boson-multimodal==0.1.1 descript-audio-codec==1.0.0 descript-audiotools==0.7.2)

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install-higgs: $PYTHON is not a Python 3.11+ interpreter" >&2
    exit 2
fi

# The extra's requirement list, read from pyproject.toml so there is one source of truth.
mapfile -t EXTRA < <("$PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as handle:
    print("\n".join(tomllib.load(handle)["project"]["optional-dependencies"]["higgs"]))
EOF
)

# Everything satisfied already? Then skip pip (it takes seconds even when there is nothing to do).
satisfied() {
    "$PYTHON" - "${EXTRA[@]}" "${NO_DEPS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
for line in sys.argv[1:]:
    requirement = Requirement(line)
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        sys.exit(1)
    if installed not in requirement.specifier:
        sys.exit(1)
EOF
}

TORCH_PIN=()
if TORCH_VERSION="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("torch").split("+")[0])' 2>/dev/null)"; then
    TORCH_PIN=("torch==$TORCH_VERSION")
fi

if satisfied 2>/dev/null; then
    echo "install-higgs: already installed"
else
    echo "install-higgs: installing ${#EXTRA[@]} runtime dependencies ${TORCH_PIN[*]:+(keeping ${TORCH_PIN[*]})}"
    "$PYTHON" -m pip install --quiet "${TORCH_PIN[@]}" "${EXTRA[@]}"
    echo "install-higgs: installing ${NO_DEPS[*]} without their declared dependencies"
    "$PYTHON" -m pip install --quiet --no-deps "${NO_DEPS[@]}"
fi

if "$PYTHON" -c 'import torchvision' 2>/dev/null; then
    echo "install-higgs: warning: torchvision is installed; on a CPU-only torch it breaks transformers" \
         "(pip uninstall torchvision)" >&2
fi

# The import check goes through voicechat's loader (this checkout's), which supplies the torchaudio stand-in.
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - <<'EOF'
from voicechat.tts.higgs.compat import import_serve_engine

import_serve_engine()
print("install-higgs: boson-multimodal imports")
EOF
