"""The evaluation the project owns: a deterministic dev set of real footage with small real
photos pasted in for known spans (`dataset`), played through the live detector's decisions
(`services/detector/replay.replay_camera`, in `runner`), scored against the truth (`metrics`)
and reported as JSON, a printed table and the tables of docs/EVALUATION.md (`report`).

    vigil eval [--split tune|heldout|all] [--quick]
    python -m vigil.evaluation --split heldout
"""
