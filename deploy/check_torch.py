"""Check, while building the image, that torch is the wanted build (cpu or cuda).

    python check_torch.py resolved VARIANT REPORT.json   # after `pip install --dry-run --report`
    python check_torch.py installed VARIANT               # after the real install

From a default pip index, `pip install torch` on Linux x86_64 is the CUDA build, which
pulls several GB of nvidia-* packages. The first check reads pip's resolution (metadata
only, nothing large downloaded yet) so a CPU image stops early with the fix in the message.
"""
from __future__ import annotations

import json
import sys

FIX = ("set the build argument TORCH_INDEX_URL to PyTorch's {want} wheel index "
       "(see docs/deploy.md), or TORCH_VARIANT to the build you want")


def resolved(variant: str, report_path: str) -> str | None:
    with open(report_path) as f:
        report = json.load(f)
    names = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
    nvidia = sorted(n for n in names if n.startswith("nvidia-"))
    print(f"pip resolved torch {names.get('torch', '(already installed)')}"
          + (f" with {len(nvidia)} nvidia-* packages" if nvidia else ""))
    if variant == "cpu" and nvidia:
        return "TORCH_VARIANT=cpu but pip would install a CUDA build of torch: " + FIX.format(want="CPU")
    return None


def installed(variant: str) -> str | None:
    import torch

    cuda = torch.version.cuda
    print(f"torch {torch.__version__}: {'CUDA ' + cuda if cuda else 'CPU'} build")
    if variant == "cpu" and cuda:
        return f"TORCH_VARIANT=cpu but torch {torch.__version__} is a CUDA build: " + FIX.format(want="CPU")
    if variant == "cuda" and not cuda:
        return f"TORCH_VARIANT=cuda but torch {torch.__version__} is a CPU build: " + FIX.format(want="CUDA")
    return None


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("resolved", "installed") or argv[1] not in ("cpu", "cuda"):
        print(__doc__, file=sys.stderr)
        return 2
    problem = resolved(argv[1], argv[2]) if argv[0] == "resolved" else installed(argv[1])
    if problem:
        print("error: " + problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
