"""The temporal scorer's training recipe: the model's name, the artefacts' file names, seeds, sizes
and the thresholds tried. train.py trains by it and training_report.py describes it; both read
it here so that the report cannot describe another recipe than the one that ran.
"""

MODEL_NAME = "vigil-temporal-gru-v2"
ONNX_NAME = "gru.onnx"
REPORT_NAME = "report.json"
TRAINING_NAME = "TRAINING.md"

SEED = 1337
HIDDEN = 24
EPOCHS = 10
BATCH = 512
LEARNING_RATE = 3e-3
OPSET = 18
TUNED_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
# Positives are ~1 % of the windows and many of them look like the background to the encoder,
# so plain cross-entropy puts no window over 0.5. Positive windows weigh `pos_weight` times
# more; the output is then the probability under that reweighted prior (the calibrated one is
# p / (p + w (1 - p))), which puts the machine's enter threshold of 0.5 at the operating point
# chosen. `pos_weight` is chosen by event F1 on a validation part of the TRAINING sequences
# (every fifth), models trained on the other four fifths for SELECT_EPOCHS epochs.
POS_WEIGHTS = (3.0, 6.0, 10.0, 20.0)
SELECT_EPOCHS = 5
VALIDATION_EVERY = 5
# Quiet windows (no label, calibrated score under QUIET in every frame) are most of the data and
# easy: one in QUIET_KEEP is kept, weighing QUIET_KEEP, so the loss is unchanged in expectation.
QUIET = 0.05
QUIET_KEEP = 4
