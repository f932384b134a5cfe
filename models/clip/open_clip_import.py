"""`import_open_clip`: open_clip, imported even where torchvision's compiled extension was built for
another torch (the case of our `make setup`). torch and open_clip are imported only when called, so
that the runtime (tokenizer, preprocessing, onnxruntime) works without them."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Kept alive for the life of the process: the op schemas it defines vanish when it is collected.
_torchvision_stub_ops: torch.library.Library | None = None


def _torchvision_ops_registered(torch: ModuleType) -> bool:
    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute lookup is the probe
    except (AttributeError, RuntimeError):
        return False
    return True


def _load_torchvision_extension(torch: ModuleType) -> None:
    """Load torchvision's C++ ops exactly as `import torchvision` would, if they load at all.

    Done before deciding on stubs: the ops only exist after torchvision's import, and a stub
    schema defined first would stop a working extension from registering its real kernels.
    """
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    for location in (spec.submodule_search_locations or []) if spec else []:
        loader_details = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
        extension = importlib.machinery.FileFinder(location, loader_details).find_spec("_C")
        if extension is not None and extension.origin:
            try:
                torch.ops.load_library(extension.origin)
            except (ImportError, OSError):
                pass  # built for another torch: the case the stubs below are for
            return


def import_open_clip() -> Any:  # the open_clip module, which is untyped
    """Import open_clip, working around a torchvision build that does not match the installed torch.

    open_clip imports torchvision. When torchvision's compiled extension does not load (a CPU torch
    with a torchvision built for another torch, as in our `make setup`), torchvision's Python code
    still registers fake kernels for its `nms` / `qnms` operators, which fails with "operator
    torchvision::nms does not exist" and makes the whole import fail. CLIP never calls those
    operators, so defining their schemas (without kernels) is enough for the import to succeed.
    Where torchvision's extension does load, nothing is defined and torchvision works fully.
    """
    global _torchvision_stub_ops
    import sys

    import torch

    if "torchvision" not in sys.modules and not _torchvision_ops_registered(torch):
        _load_torchvision_extension(torch)
    if not _torchvision_ops_registered(torch) and _torchvision_stub_ops is None:
        # torch leaves torch.library.Library's methods unannotated.
        _torchvision_stub_ops = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
        _torchvision_stub_ops.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
        _torchvision_stub_ops.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
    import open_clip

    return open_clip
