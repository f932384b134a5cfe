"""Zero-shot check of the offline encoder on the 8 images of OpenAI's CLIP notebook.

    python -m vigil.models.offline.evaluate [--json] [--models-dir DIR] [--opencv-samples [DIR]]

For each image (scikit-image's sample photos), the 8 captions are ranked by cosine
similarity; top-1 accuracy is reported with the English captions and with Vietnamese
translations of them. The reverse direction (each caption ranks the 8 images), which is how
Vigil uses an encoder (a standing query against frames), is reported too. CLIP ViT-B/32 gets
8/8 image-to-caption here. Needs scikit-image (the photos ship inside it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import VigilError

if TYPE_CHECKING:
    from vigil.models.offline.encoder import OfflineEncoder

# (image name, English caption from the CLIP notebook, Vietnamese translation)
CASES: list[tuple[str, str, str]] = [
    (
        "astronaut",
        "a portrait of an astronaut with the American flag",
        "chân dung một phi hành gia với lá cờ Mỹ",
    ),
    (
        "camera",
        "a person looking at a camera on a tripod",
        "một người đang nhìn vào máy ảnh đặt trên chân máy",
    ),
    ("chelsea", "a facial photo of a tabby cat", "ảnh chụp khuôn mặt của một con mèo mướp"),
    ("coffee", "a cup of coffee on a saucer", "một tách cà phê trên đĩa lót"),
    ("horse", "a black-and-white silhouette of a horse", "hình bóng đen trắng của một con ngựa"),
    ("motorcycle", "a red motorcycle standing in a garage", "một chiếc xe máy màu đỏ đậu trong nhà để xe"),
    ("page", "a page of text about segmentation", "một trang văn bản về phân đoạn ảnh"),
    ("rocket", "a rocket standing on a launchpad", "một tên lửa đứng trên bệ phóng"),
]


# A second, larger set used while developing the method (so that its settings were not chosen
# on the 8 notebook images alone): real photos and a video frame from Debian's opencv-doc
# (apt-get install opencv-doc), captions written before looking at any model output.
OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_CASES: list[tuple[str, str, str]] = [
    (
        "messi5.jpg",
        "a football player kicking a ball on a field",
        "một cầu thủ bóng đá đang sút bóng trên sân",
    ),
    ("fruits.jpg", "sliced oranges, lemons and kiwi fruit", "những lát cam, chanh và kiwi"),
    ("baboon.jpg", "the face of a colourful monkey", "khuôn mặt của một con khỉ sặc sỡ"),
    ("butterfly.jpg", "a black and white butterfly on a leaf", "một con bướm đen trắng đậu trên lá"),
    ("squirrel_cls.jpg", "a squirrel on a tree branch", "một con sóc trên cành cây"),
    ("HappyFish.jpg", "a cartoon drawing of a fish", "hình vẽ hoạt hình một con cá"),
    ("building.jpg", "a modern office building", "một tòa nhà văn phòng hiện đại"),
    ("home.jpg", "an old palace with towers under a blue sky", "một cung điện cổ có tháp dưới bầu trời xanh"),
    ("orange.jpg", "an orange", "một quả cam"),
    ("apple.jpg", "a red apple", "một quả táo đỏ"),
    (
        "starry_night.jpg",
        "a painting of a night sky with swirling stars",
        "một bức tranh bầu trời đêm với những vì sao xoáy",
    ),
    (
        "licenseplate_motion.jpg",
        "the back of a car with its license plate",
        "phía sau một chiếc ô tô với biển số xe",
    ),
    ("aero1.jpg", "an aerial view of a city", "quang cảnh thành phố nhìn từ trên cao"),
    (
        "basketball1.png",
        "two men playing with a ball in an office",
        "hai người đàn ông chơi bóng trong văn phòng",
    ),
    ("board.jpg", "an electronic circuit board", "một bảng mạch điện tử"),
    ("box_in_scene.png", "a pile of boxes and packages", "một đống hộp và gói hàng"),
    ("smarties.png", "colourful candies on a white table", "những viên kẹo nhiều màu trên bàn trắng"),
    (
        "stuff.jpg",
        "a pen, a lighter and a coin on a table",
        "một cây bút, một cái bật lửa và một đồng xu trên bàn",
    ),
    ("vtest.avi", "people walking in a hall", "mọi người đi bộ trong sảnh"),  # frame 100
]


def load_opencv_images(folder: Path) -> dict[str, np.ndarray]:
    import cv2

    from vigil.models.images import load_image

    images = {}
    for name, _, _ in OPENCV_CASES:
        path = folder / name
        if name.endswith(".avi"):
            capture = cv2.VideoCapture(str(path))
            capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
            ok, frame = capture.read()
            capture.release()
            if not ok:
                raise VigilError(f"{path}: cannot read frame 100")
            images[name] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        else:
            images[name] = load_image(path)
    return images


def load_images() -> dict[str, np.ndarray]:
    """The notebook's images as (H, W, 3) uint8 RGB (grey and boolean ones expanded)."""
    try:
        from skimage import data
    except ImportError:
        raise VigilError("the evaluation images ship in scikit-image: pip install scikit-image") from None

    def rgb(array: np.ndarray) -> np.ndarray:
        if array.dtype == bool:  # the horse silhouette is a boolean mask
            array = array.astype(np.uint8) * 255
        return np.repeat(array[:, :, None], 3, axis=2) if array.ndim == 2 else array

    loaders: dict[str, Callable[[], np.ndarray]] = {
        "astronaut": data.astronaut,
        "camera": data.camera,
        "chelsea": data.chelsea,
        "coffee": data.coffee,
        "horse": data.horse,
        "motorcycle": lambda: data.stereo_motorcycle()[1],
        "page": data.page,
        "rocket": data.rocket,
    }
    return {name: rgb(loaders[name]()) for name, _, _ in CASES}


@dataclass
class LanguageResult:
    image_to_caption: int  # images whose best caption is their own
    caption_to_image: int  # captions whose best image is their own
    per_image: list[dict[str, Any]]


def score(similarities: np.ndarray, captions: list[str], names: list[str]) -> LanguageResult:
    per_image: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        order = np.argsort(-similarities[i])
        per_image.append(
            {
                "image": name,
                "correct": bool(order[0] == i),
                "rank_of_true_caption": int(np.flatnonzero(order == i)[0]) + 1,
                "best_caption": captions[order[0]],
                "true_score": round(float(similarities[i, i]), 4),
                "best_score": round(float(similarities[i, order[0]]), 4),
            }
        )
    image_to_caption = sum(item["correct"] for item in per_image)
    caption_to_image = int((similarities.argmax(axis=0) == np.arange(len(names))).sum())
    return LanguageResult(image_to_caption, caption_to_image, per_image)


def evaluate_set(
    encoder: OfflineEncoder, cases: list[tuple[str, str, str]], images: dict[str, np.ndarray]
) -> dict[str, Any]:
    names = [name for name, _, _ in cases]
    # Latency: one image per call, as a camera delivers them; the first call warms up.
    encoder.embed_images([images[names[0]]])
    latencies, vectors = [], []
    for name in names:
        started = time.perf_counter()
        vectors.append(encoder.embed_images([images[name]])[0])
        latencies.append((time.perf_counter() - started) * 1000)
    image_vectors = np.stack(vectors)
    report: dict[str, Any] = {
        "images": len(names),
        "latency_ms_per_image": {
            "median": round(statistics.median(latencies), 1),
            "max": round(max(latencies), 1),
        },
        "labels": {
            name: [(label, round(w, 3)) for label, w in encoder.explain(images[name], 5)] for name in names
        },
    }
    for language, column in (("en", 1), ("vi", 2)):
        captions = [case[column] for case in cases]
        started = time.perf_counter()
        text_vectors = encoder.embed_texts(captions)
        text_ms = (time.perf_counter() - started) * 1000 / len(captions)
        result = score(image_vectors @ text_vectors.T, captions, names)
        report[language] = {
            "top1_image_to_caption": f"{result.image_to_caption}/{len(names)}",
            "top1_caption_to_image": f"{result.caption_to_image}/{len(names)}",
            "text_ms_per_caption": round(text_ms, 1),
            "per_image": result.per_image,
        }
    return report


def evaluate(models_dir: Path | None = None, opencv_samples: Path | None = None) -> dict[str, Any]:
    from vigil.models.offline import OfflineEncoder

    encoder = OfflineEncoder.load(models_dir)
    report: dict[str, Any] = {
        "encoder": encoder.info.name,
        "config": encoder.info.details,
        "clip_notebook": evaluate_set(encoder, CASES, load_images()),
    }
    if opencv_samples is not None:
        report["opencv_samples"] = evaluate_set(encoder, OPENCV_CASES, load_opencv_images(opencv_samples))
    return report


def print_report(report: dict[str, Any]) -> None:
    print(report["encoder"])
    titles = {"clip_notebook": "CLIP notebook images", "opencv_samples": "opencv-doc development images"}
    for key, title in titles.items():
        if key not in report:
            continue
        part = report[key]
        print(f"\n=== {title} ({part['images']}) ===")
        for language in ("en", "vi"):
            result = part[language]
            print(
                f"[{language}] image->caption top-1 {result['top1_image_to_caption']}, "
                f"caption->image top-1 {result['top1_caption_to_image']}"
            )
            for item in result["per_image"]:
                mark = "ok  " if item["correct"] else "MISS"
                detail = "" if item["correct"] else f"  (true caption ranked {item['rank_of_true_caption']})"
                print(f"  {mark} {item['image']:<23} -> {item['best_caption']}{detail}")
        print("what the image models saw (label, share of the embedding):")
        for name, labels in part["labels"].items():
            print(f"  {name:<23} " + ", ".join(f"{label} {weight:.2f}" for label, weight in labels))
        latency = part["latency_ms_per_image"]
        print(f"latency per image (1 image per call): median {latency['median']} ms, max {latency['max']} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument(
        "--opencv-samples",
        type=Path,
        nargs="?",
        const=OPENCV_DOC_DATA,
        default=None,
        help=f"also run the 19-image development set (default folder {OPENCV_DOC_DATA})",
    )
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.models_dir, args.opencv_samples)
    except VigilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
