"""The open_clip PyTorch model an export starts from: checked to be one whose tokenizer Vigil's
runtime reproduces, loaded with its weights (a pretrained tag, a local checkpoint, or seeded random
weights), and described for the manifest (weights, licence, preprocessing)."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from vigil.errors import ModelUnavailableError
from vigil.models.clip.config import ClipSpec, weights_help
from vigil.models.clip.open_clip_import import import_open_clip
from vigil.models.clip.preprocess import INTERPOLATIONS, RESIZE_MODES
from vigil.models.encoder import sha256_file

log = logging.getLogger("vigil.models")


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _check_supported(open_clip: ModuleType, model_name: str) -> None:
    """Refuse models whose tokenizer our runtime cannot reproduce, before any download."""
    config = open_clip.get_model_config(model_name)
    if config is None:
        usable = [
            name
            for name in open_clip.list_models()
            if name.startswith("ViT-")
            and "hf_tokenizer_name" not in open_clip.get_model_config(name).get("text_cfg", {})
        ]
        raise ModelUnavailableError(
            f"unknown open_clip model {model_name!r} "
            f"(ViT models with the CLIP tokenizer: {', '.join(usable)})"
        )
    text_cfg = config.get("text_cfg", {})
    if "hf_tokenizer_name" in text_cfg:
        raise ModelUnavailableError(
            f"open_clip model {model_name!r} uses a Hugging Face tokenizer; Vigil's CLIP runtime only "
            "has the OpenAI CLIP BPE tokenizer"
        )
    from open_clip.tokenizer import SimpleTokenizer, _clean_lower

    tokenizer = open_clip.get_tokenizer(model_name)
    if not (
        isinstance(tokenizer, SimpleTokenizer)
        and tokenizer.clean_fn is _clean_lower
        and tokenizer.reduction_fn is None
        and tokenizer.vocab_size == 49408
    ):
        raise ModelUnavailableError(
            f"open_clip model {model_name!r} tokenizes differently from OpenAI CLIP "
            f"({type(tokenizer).__name__}); Vigil's CLIP runtime cannot reproduce it"
        )


def load_open_clip_model(spec: ClipSpec, random_init: bool = False) -> tuple[Any, dict[str, Any]]:
    """The open_clip PyTorch model of `spec` in eval mode (an untyped open_clip CLIP), and a dict
    describing its weights.

    `random_init=True` gives seeded random weights: the same every call, so that tests can compare
    an export with the PyTorch model it came from.
    """
    import torch

    open_clip = import_open_clip()
    _check_supported(open_clip, spec.model)
    config_quick_gelu = bool(open_clip.get_model_config(spec.model).get("quick_gelu", False))
    if random_init:
        # Seeded so that two exports of "random weights" are the same file (reproducible benches).
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = open_clip.create_model(spec.model, pretrained=None)
        return model.eval(), {"pretrained": None, "checkpoint": None, "quick_gelu": config_quick_gelu}
    if spec.checkpoint is not None:
        checkpoint = spec.checkpoint.expanduser().resolve()
        if not checkpoint.is_file():
            raise ModelUnavailableError(f"CLIP checkpoint {spec.checkpoint} does not exist; {weights_help()}")
        try:
            # The checkpoint must match the architecture exactly (open_clip loads strictly); for
            # OpenAI-trained weights pick a "-quickgelu" model name, since the file cannot tell.
            model = open_clip.create_model(spec.model, pretrained=str(checkpoint))
        except Exception as error:  # noqa: BLE001 - any failure means: these weights are unusable
            raise ModelUnavailableError(
                f"cannot load CLIP checkpoint {checkpoint} into {spec.model} ({_one_line(error)}); "
                f"{weights_help()}"
            ) from None
        return model.eval(), {
            "pretrained": None,
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_file(checkpoint),
            "quick_gelu": config_quick_gelu,
        }
    if spec.pretrained:
        tag_cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
        if not tag_cfg:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(spec.model)) or "none"
            raise ModelUnavailableError(
                f"open_clip has no pretrained tag {spec.pretrained!r} for {spec.model} (known: {tags}); "
                f"{weights_help()}"
            )
        # open_clip 3 builds the architecture from the model name alone and only warns when the
        # tag was trained with QuickGELU (all OpenAI weights): the embeddings would be quietly
        # wrong, so we follow the tag.
        quick_gelu = config_quick_gelu or bool(tag_cfg.get("quick_gelu", False))
        log.info(
            "getting weights %s/%s through open_clip (a download unless cached; offline, set "
            "HF_HUB_OFFLINE=1 to fail at once instead of after retries)",
            spec.model,
            spec.pretrained,
        )
        try:
            model = open_clip.create_model(
                spec.model, pretrained=spec.pretrained, force_quick_gelu=quick_gelu
            )
        except Exception as error:  # noqa: BLE001 - network, cache, disk: all mean no weights
            raise ModelUnavailableError(
                f"cannot get CLIP weights {spec.model}/{spec.pretrained} ({_one_line(error)}); "
                f"{weights_help()}"
            ) from None
        return model.eval(), {"pretrained": spec.pretrained, "checkpoint": None, "quick_gelu": quick_gelu}
    raise ModelUnavailableError(f"CLIP {spec.model}: no weights named; {weights_help()}")


def describe_weights(spec: ClipSpec, weights: dict[str, Any], random_init: bool) -> dict[str, str]:
    """The manifest's name, source and licence of the weights that `load_open_clip_model` loaded."""
    if random_init:
        return {
            "name": f"clip:{spec.model}/random-init",
            "source": "random-init (not a result)",
            "licence": "none: random weights, for tests and benchmarks only (not a result)",
        }
    if weights["checkpoint"]:
        return {
            "name": f"clip:{spec.model}/ckpt-{weights['checkpoint_sha256'][:12]}",
            "source": f"checkpoint {weights['checkpoint']}",
            "licence": "see the licence of the checkpoint's origin (a local file, unknown to Vigil)",
        }
    tag = weights["pretrained"]
    licence = (
        "MIT (OpenAI CLIP weights, https://github.com/openai/CLIP)"
        if tag == "openai"
        else f"see upstream pretrained tag licence (open_clip {spec.model}/{tag})"
    )
    return {
        "name": f"clip:{spec.model}/{tag}",
        "source": f"open_clip pretrained tag {tag}",
        "licence": licence,
    }


def preprocess_config(model: Any, model_name: str) -> dict[str, Any]:  # model: open_clip's (untyped)
    """The manifest's preprocessing fields, from open_clip's; refuses what Vigil's runtime cannot do."""
    cfg = model.visual.preprocess_cfg
    size = cfg["size"]
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ModelUnavailableError(f"{model_name}: non-square image size {size} is not supported")
        size = size[0]
    interpolation = cfg.get("interpolation") or "bicubic"
    resize_mode = cfg.get("resize_mode") or "shortest"
    if interpolation not in INTERPOLATIONS or resize_mode not in RESIZE_MODES:
        raise ModelUnavailableError(
            f"{model_name}: preprocessing {resize_mode}/{interpolation} is not supported by Vigil "
            f"(supported: resize {RESIZE_MODES} with {sorted(INTERPOLATIONS)})"
        )
    return {
        "image_size": int(size),
        "mean": [float(x) for x in cfg["mean"]],
        "std": [float(x) for x in cfg["std"]],
        "interpolation": interpolation,
        "resize_mode": resize_mode,
    }
