"""The JSON the service answers with: faces, images, operating points, matches and errors."""

from __future__ import annotations

import numpy as np
from fastapi.responses import JSONResponse

from ..face_loop import Face, ImageResult
from ..weights import OperatingPoint


def face_json(face: Face, embedding: bool = False) -> dict:
    out = {"index": face.index, "box": [round(float(v), 2) for v in face.box],
           "score": None if np.isnan(face.score) else round(float(face.score), 6),
           "landmarks": None if np.isnan(face.landmarks).all() else
           [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks]}
    if embedding:
        out["embedding"] = [float(v) for v in face.embedding]
    return out


def image_json(result: ImageResult, embedding: bool = False) -> dict:
    """One image's answer: ``status`` is one word (ok, no face, too small, error); an error's code and message
    come beside it, and an unreadable image has no size."""
    out = {"input": result.source, "status": result.status.kind.value,
           "size": None if result.status.is_error else {"width": int(result.size[1]), "height": int(result.size[0])},
           "faces": [face_json(f, embedding) for f in result.faces]}
    if result.status.is_error:
        out["error"] = {"code": result.status.code or "bad_image", "message": result.status.detail}
    return out


def point_json(point: OperatingPoint) -> dict:
    return {"threshold": point.threshold, "far_target": point.far_target, "far": point.far, "tar": point.tar,
            "source": point.source, "distance": "squared L2 between unit-length embeddings (0 to 4)"}


def error_response(status: int, code: str, message: str, input: str | None = None,
           headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **({"input": input} if input else {})}},
                        status_code=status, headers=headers)


def match_json(match) -> dict:
    return {"name": match.name, "distance": round(match.distance, 6), "face_id": match.face_id}
