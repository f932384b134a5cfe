"""Quiet third-party chatter while exporting and quantising (`quiet_third_party`)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class _DropQuantizerChatter(logging.Filter):
    """Drop onnxruntime.quantization's root-logger INFO lines and its "consider pre-processing" advice."""

    def filter(self, record: logging.LogRecord) -> bool:
        from_quantizer = f"onnxruntime{os.sep}quantization" in record.pathname
        advice = str(record.msg).startswith("Please consider to run pre-processing")
        return not (from_quantizer and (record.levelno < logging.WARNING or advice))


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence advice meant for the library authors, not for someone running `vigil export`.

    torch's exporter emits FutureWarnings about its own internals, onnxruntime's quantizer logs
    every node at INFO and "consider pre-processing" (advice for static quantisation) on the root
    logger, and onnx_ir logs every deduplicated initializer at INFO.
    """
    root = logging.getLogger()
    dropped = _DropQuantizerChatter()
    onnx_ir = logging.getLogger("onnx_ir")
    onnx_ir_level = onnx_ir.level
    root.addFilter(dropped)
    onnx_ir.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        root.removeFilter(dropped)
        onnx_ir.setLevel(onnx_ir_level)
