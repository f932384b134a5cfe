"""CLIP through ONNX: open_clip models exported once (export.py, needs torch), run anywhere.

config.py     ClipSpec and where an export lives
tokenizer.py  open_clip's BPE tokenizer without torch
preprocess.py open_clip's eval image transform without torch
export.py     open_clip -> ONNX fp32 (+ int8, fp16) with a manifest; imports torch lazily
int8.py       the int8 recipe (7-bit per-channel weights: no int16 saturation on any x86 CPU)
runtime.py    ClipEncoder: the Encoder interface over an export
"""
