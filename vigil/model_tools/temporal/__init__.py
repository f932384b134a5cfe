"""Training the GRU temporal scorer (models/temporal/): `python -m vigil.model_tools.temporal.train`.

data/               the labelled sequences: real footage with real photos pasted in, embedded
replay_inputs.py    each sequence's queries scored and gated as the live detector does; replaying all
evaluate.py         per-(sequence, query) replays as the live detector runs them, and their figures
gru.py              the GRU: its training windows, fitting, pos_weight selection, ONNX export
recipe.py           the recipe: seeds, sizes, thresholds tried, the artefacts' names
train.py            train, export to ONNX, evaluate, write gru.onnx and report.json (`make models`)
training_report.py  TRAINING.md: the report's prose, tables and verdict
"""
