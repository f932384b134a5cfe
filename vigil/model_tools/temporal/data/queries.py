"""The queries a sequence is judged on: every pasted object's query in English and Vietnamese,
plus objects never pasted anywhere (pure negatives).
"""

from __future__ import annotations

from dataclasses import dataclass

# object -> (English query, Vietnamese query)
QUERIES: dict[str, tuple[str, str]] = {
    "cat": ("a cat", "một con mèo"),
    "coffee": ("a cup of coffee", "một tách cà phê"),
    "orange": ("an orange", "một quả cam"),
    "fruit": ("a pile of fruit", "trái cây"),
    "butterfly": ("a butterfly", "một con bướm"),
    "astronaut": ("an astronaut", "một phi hành gia"),
    "rocket": ("a rocket", "một tên lửa"),
    "monkey": ("a monkey", "một con khỉ"),
    "motorcycle": ("a motorcycle", "một chiếc xe máy"),
    "apple": ("an apple", "một quả táo"),
    "squirrel": ("a squirrel", "một con sóc"),
    "football": ("a football player", "một cầu thủ bóng đá"),
    # never pasted anywhere: pure negatives
    "fire": ("a fire", "một đám cháy"),
    "dog": ("a dog", "một con chó"),
    "horse": ("a horse", "một con ngựa"),
    "knife": ("a knife", "một con dao"),
    "guitar": ("a guitar", "một cây đàn ghi-ta"),
}


@dataclass(frozen=True)
class Query:
    key: str  # "cat/en"
    obj: str
    text: str
    language: str


def all_queries() -> list[Query]:
    return [
        Query(f"{obj}/{lang}", obj, text, lang)
        for obj, texts in QUERIES.items()
        for lang, text in zip(("en", "vi"), texts, strict=True)
    ]
