"""Measuring the offline encoder (models/offline/) and generating its committed files.

make_labels.py              imagenet_labels.json, coco_labels.json from WordNet 3.0
make_language_direction.py  language_direction.json (the Vietnamese-vs-English direction)
measure_score_prior.py      score_prior.json (the typical background signal)
measure_prompts.py          do prompt ensembles and background prompts help on real footage?
"""
