"""CLIP through ONNX: open_clip models exported once (export.py, needs torch), run anywhere.

config.py            ClipSpec and where an export lives
tokenizer.py         open_clip's BPE tokenizer without torch
preprocess.py        open_clip's eval image transform without torch
export.py            open_clip -> ONNX fp32 (+ int8, fp16) with a manifest; imports torch lazily
open_clip_import.py  open_clip imported despite a torchvision built for another torch
open_clip_model.py   the open_clip PyTorch model and weights an export starts from
towers.py            the fp32 ONNX image and text towers and their parity with PyTorch
precisions.py        int8 / fp16 files derived from fp32 (no torch), checked against it
quiet.py             third-party chatter silenced during export
int8.py              the int8 recipe (7-bit per-channel weights: no int16 saturation on any x86 CPU)
manifest.py          reading and writing an export's manifest.json
runtime.py           ClipEncoder: the Encoder interface over an export
"""
