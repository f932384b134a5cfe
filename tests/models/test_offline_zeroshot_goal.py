"""The offline encoder keeps its measured zero-shot accuracy on OpenAI's CLIP-notebook images.

docs/ZEROSHOT.md reports 7/8 top-1 (English and Vietnamese); the goal is at least 6/8. This
guards the goal, not the exact figure, so that a change that breaks the method fails here.
"""

from vigil.models.offline.evaluate import CASES, evaluate_set, load_images


def test_clip_notebook_top1_reaches_six_of_eight_in_english_and_vietnamese(offline_encoder):
    report = evaluate_set(offline_encoder, CASES, load_images())
    for language in ("en", "vi"):
        correct = sum(item["correct"] for item in report[language]["per_image"])
        assert correct >= 6, (language, report[language]["per_image"])
