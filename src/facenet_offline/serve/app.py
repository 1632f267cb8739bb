"""The HTTP service: FastAPI routes over one FaceNet, a batcher and a gallery.

Every image of every request goes through the batcher (``batcher.py``); the gallery is used by one
thread at a time. Every answer is JSON; every error has a stable ``code`` and a message naming
the input and the fix. Results carry the model, precision and, where a decision is made, the
operating point.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import numpy as np
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..data.images import source_digest
from ..detect.mtcnn import Selection
from ..distance import squared_l2
from ..errors import FacenetOfflineError
from ..face_loop import FaceOptions, FaceTask
from ..recognition import BadNameError, EnrolledPhoto, Gallery, UnknownPersonError
from ..recognition.gallery import check_name
from ..recognition.identify import IDENTIFY_FAR, decide, search_people
from ..samples import PEOPLE
from ..weights import OperatingPoint
from . import keys as api_keys
from .access_log import log_request, log_requests
from .answers import error_response, image_json, match_json, point_json
from .body_limit import BodyLimit
from .config import ServeConfig
from .inputs import RequestData, RequestError, read_request
from .page import mount_page
from .service import Service

log = logging.getLogger(__name__)
HEALTH_FACE = PEOPLE / "Tony_Blair" / "Tony_Blair_0001.jpg"
MAX_TOP_K = 50


# --- options -----------------------------------------------------------------------------------------
def _faces(data: RequestData, default: str) -> Selection:
    value = data.option("faces", str, default)
    try:
        return Selection.parse(value)
    except ValueError as exc:
        raise RequestError(422, "bad_field", f"faces={value!r}: {exc}", "faces") from None


def _point(service: Service, data: RequestData, default_far: float | None) -> OperatingPoint:
    threshold, far = data.option("threshold", float), data.option("far", float)
    try:
        return service.fn.operating_point(threshold, far, default_far)
    except ValueError as exc:
        field = "threshold, far" if threshold is not None and far is not None else (
            "threshold" if threshold is not None else "far")
        raise RequestError(422, "bad_operating_point", str(exc), field) from None


def _images(data: RequestData, field: str, at_least: int = 1, at_most: int | None = None) -> list[tuple[str, bytes]]:
    images = data.images.get(field, [])
    if len(images) < at_least or (at_most is not None and len(images) > at_most):
        wanted = f"exactly {at_least}" if at_most == at_least else f"at least {at_least}"
        raise RequestError(422, "missing_images" if not images else "wrong_image_count",
                           f"{field}: {len(images)} image(s) sent, {wanted} wanted (files in the form field "
                           f"{field!r}, or base64 strings in the JSON field {field!r}).", field)
    return images


def _body_doc(fields: dict[str, str], images: tuple[str, ...] = ("images",)) -> dict:
    """OpenAPI text of a body taken as multipart files or as JSON with base64 images."""
    file = {"type": "string", "format": "binary"}
    b64 = {"type": "string", "format": "byte", "description": "the image file's bytes, base64"}
    multipart = {name: {"type": "array", "items": file} for name in images}
    multipart.update({name: {"type": "string", "description": text} for name, text in fields.items()})
    as_json = {name: {"type": "array", "items": b64} for name in images}
    as_json.update({name: {"description": text} for name, text in fields.items()})
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": multipart}},
        "application/json": {"schema": {"type": "object", "properties": as_json}}}}}


# --- the app -----------------------------------------------------------------------------------------
def create_app(config: ServeConfig, service: Service | None = None) -> FastAPI:
    """The service's app. Its models load at start-up (``/readyz`` answers once they have)."""
    holder: dict[str, Service] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        holder["service"] = service or await run_in_threadpool(Service, config)
        log.info("facenet-offline serving %s (%s) on %s:%d", holder["service"].model["model"],
                 holder["service"].model["precision"], config.host, config.port)
        yield
        await run_in_threadpool(holder["service"].close)  # in-flight requests have finished by now

    # FastAPIOffline: /docs and /redoc from files installed with it, not from a CDN (the service runs offline).
    app = FastAPIOffline(title="facenet-offline", version="1", lifespan=lifespan,
                  middleware=[Middleware(BodyLimit, max_bytes=config.limits.max_request_bytes)],
                  description="Offline face recognition with FaceNet: detect, embed, verify, identify, and a gallery "
                              "of known people. Images come as multipart files or as base64 in JSON; never as paths "
                              f"or URLs. With keys configured, send one in the {api_keys.HEADER} header.")

    def current() -> Service:
        return holder["service"]

    header = APIKeyHeader(name=api_keys.HEADER, auto_error=False,
                          description="an API key made by `facenet-offline keys add` (when the service has keys)")

    def require(scope: api_keys.Scope) -> Callable:
        def check(presented: str | None = Security(header)) -> api_keys.ApiKey | None:
            service = current()
            if service.keys is None:
                return None
            if not presented:
                raise RequestError(401, "missing_key", f"send an API key in the {api_keys.HEADER} header.")
            key = api_keys.match(service.keys, presented)
            if key is None:
                raise RequestError(401, "bad_key", f"the key in {api_keys.HEADER} is not one of this service's.")
            if not key.allows(scope):
                raise RequestError(403, "forbidden", f"key {key.name!r} may {key.scope.value} only; this needs "
                                                     f"{scope.value}.")
            return key
        return Security(check)

    read, admin = require(api_keys.Scope.READ), require(api_keys.Scope.ADMIN)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.input, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's own answers (no such route, method not allowed) in the service's error shape."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = (f"{request.method} {request.url.path}: no such endpoint; /docs lists them."
                   if exc.status_code in (404, 405) else str(exc.detail))
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, "bad_field", f"{where}: {first.get('msg', 'invalid')}", where)

    @app.exception_handler(FacenetOfflineError)
    async def library_error(request: Request, exc: FacenetOfflineError) -> JSONResponse:
        return error_response(422, "refused", str(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", "the service failed on this request; the log has the details.")

    @app.middleware("http")
    async def observe(request: Request, call_next):
        """Access log (no headers, so no keys), metrics by route, and a request id."""
        started, request_id = time.perf_counter(), uuid.uuid4().hex[:12]
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        seconds = time.perf_counter() - started
        if "service" in holder:
            holder["service"].metrics.requests.labels(route, str(response.status_code)).inc()
            holder["service"].metrics.latency.labels(route).observe(seconds)
        response.headers["X-Request-Id"] = request_id
        log_request(request_id, request.method, route, response.status_code, seconds,
                    request.client.host if request.client else None)
        return response

    # --- operations -------------------------------------------------------------------------------
    @app.get("/readyz", tags=["operations"], summary="200 once the models are loaded")
    async def readyz():
        return {"status": "ready", "model": current().model}

    @app.get("/healthz", tags=["operations"], summary="a real detection and embedding of a built-in face")
    async def healthz():
        started = time.perf_counter()
        (result,) = await current().run([("built-in face", HEALTH_FACE.read_bytes())], FaceTask(), embed=True)
        ok = len(result.faces) == 1 and result.faces[0].embedding.size == current().fn.spec.embedding_dim
        body = {"status": "ok" if ok else "failing", "faces": len(result.faces),
                "ms": round((time.perf_counter() - started) * 1000, 1), "model": current().model}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics():
        service = current()
        service.metrics.queue_depth.set(service.batcher.depth)
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    # --- faces --------------------------------------------------------------------------------------
    @app.post("/v1/detect", tags=["faces"], summary="every face of each image: box, score, landmarks",
              openapi_extra=_body_doc({}))
    async def detect(request: Request, key=read):
        service = current()
        data = await read_request(request, service.config.limits, ("images",))
        results = await service.run(_images(data, "images"), FaceTask(FaceOptions(Selection.ALL)), embed=False)
        return {"model": service.model, "images": [image_json(r) for r in results]}

    @app.post("/v1/embed", tags=["faces"], summary="the faces of each image with their embeddings",
              openapi_extra=_body_doc({"faces": "which faces: all (default), largest, probable, centre-weighted, "
                                                 "nearest-centre",
                                       "embed_only": "true: each image is a ready face crop, embedded whole"}))
    async def embed(request: Request, key=read):
        service = current()
        data = await read_request(request, service.config.limits, ("images",), ("faces", "embed_only"))
        task = FaceTask(FaceOptions(_faces(data, "all")), ready=data.option("embed_only", bool, False))
        results = await service.run(_images(data, "images"), task, embed=True)
        return {"model": service.model, "images": [image_json(r, embedding=True) for r in results]}

    @app.post("/v1/verify", tags=["faces"], summary="is the probe's face the person in each target?",
              openapi_extra=_body_doc({"faces": "which face of each photo: largest (default), probable, "
                                                 "centre-weighted, nearest-centre",
                                       "far": "false-accept rate to hold: 0.01, 0.001 or 0.0001 (default: the "
                                              "accuracy-optimal threshold)",
                                       "threshold": "squared L2 threshold, 0 to 4 (give far or threshold, not "
                                                    "both)"}, ("probe", "targets")))
    async def verify(request: Request, key=read):
        service = current()
        data = await read_request(request, service.config.limits, ("probe", "targets"),
                                  ("faces", "far", "threshold"))
        faces = _faces(data, "largest")
        if faces is Selection.ALL:
            raise RequestError(422, "bad_field", "faces='all': verify compares one face of each photo; choose "
                                                 "largest, probable, centre-weighted or nearest-centre.", "faces")
        point = _point(service, data, None)
        images = _images(data, "probe", 1, 1) + _images(data, "targets")
        probe, *targets = await service.run(images, FaceTask(FaceOptions(faces)), embed=True)
        if not probe.faces:
            said = probe.status.detail if probe.status.is_error else f"{probe.status} found"
            raise RequestError(422, (probe.status.code or "bad_image") if probe.status.is_error else "no_face",
                               f"{probe.source}: {said.rstrip('.')}. Send a photo with a face as the probe.",
                               probe.source)
        answers = []
        for target in targets:
            entry = image_json(target)
            if target.faces:
                distance = float(squared_l2(probe.faces[0].embedding, target.faces[0].embedding))
                entry.update(distance=round(distance, 6), same=point.same(distance))
            else:
                entry.update(distance=None, same=None)
            answers.append(entry)
        return {"model": service.model, "operating_point": point_json(point), "probe": image_json(probe),
                "targets": answers}

    @app.post("/v1/identify", tags=["gallery"], summary="every face of each image against the gallery",
              openapi_extra=_body_doc({"top_k": f"nearest people per face (default 3, at most {MAX_TOP_K})",
                                       "far": "false-accept rate to hold (default 0.001)",
                                       "threshold": "squared L2 threshold, 0 to 4 (give far or threshold, not "
                                                    "both)"}))
    async def identify(request: Request, key=read):
        service = current()
        data = await read_request(request, service.config.limits, ("images",), ("top_k", "far", "threshold"))
        top_k = _top_k(data.option("top_k", int, 3))
        point = _point(service, data, IDENTIFY_FAR)
        results = await service.run(_images(data, "images"), FaceTask(FaceOptions(Selection.ALL)), embed=True)
        vectors = np.stack([f.embedding for r in results for f in r.faces]) if any(r.faces for r in results) \
            else np.zeros((0, service.fn.spec.embedding_dim), np.float32)
        found = await service.gallery_call(lambda g: _search(g, service, vectors, top_k))
        matches = iter(found)
        images = []
        for result in results:
            entry = image_json(result)
            for face in entry["faces"]:
                people = next(matches)
                identity, distance = decide(people, point)
                face.update(identity=identity, distance=None if np.isnan(distance) else round(distance, 6),
                            matches=[match_json(m) for m in people])
            images.append(entry)
        return {"model": service.model, "operating_point": point_json(point), "images": images}

    @app.post("/v1/search", tags=["gallery"], summary="the gallery's nearest people to a raw embedding",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["embedding"], "properties": {
                      "embedding": {"type": "array", "items": {"type": "number"}},
                      "top_k": {"type": "integer"}, "far": {"type": "number"}, "threshold": {"type": "number"}}}}}}})
    async def search(request: Request, key=read):
        service = current()
        data = await read_request(request, service.config.limits, (), ("embedding", "top_k", "far", "threshold"))
        vector = _embedding(data.options.get("embedding"), service.fn.spec.embedding_dim)
        top_k = _top_k(data.option("top_k", int, 3))
        point = _point(service, data, IDENTIFY_FAR)
        (people,) = await service.gallery_call(lambda g: _search(g, service, vector[None], top_k))
        identity, distance = decide(people, point)
        return {"model": service.model, "operating_point": point_json(point), "identity": identity,
                "distance": None if np.isnan(distance) else round(distance, 6),
                "matches": [match_json(m) for m in people]}

    # --- the gallery's people and faces ----------------------------------------------------------------
    @app.get("/v1/people", tags=["gallery"], summary="everyone in the gallery and how many faces each has")
    async def people(key=read):
        service = current()
        listed = await service.gallery_call(lambda g: (g.people(), g.model, g.first_faces()))
        return {"people": [{"name": n, "faces": c, "thumbnail_face": listed[2].get(n)} for n, c in listed[0]],
                "gallery_model": listed[1] or None}

    @app.post("/v1/people", tags=["gallery"], status_code=201, summary="a new person, with no faces yet",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}}})
    async def create_person(request: Request, key=admin):
        service = current()
        name = _name(await read_request(request, service.config.limits, (), ("name",)))
        await service.gallery_call(lambda g: g.create_person(name))
        return {"name": name, "faces": 0}

    @app.patch("/v1/people/{name}", tags=["gallery"], summary="rename a person",
               openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                   "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}}})
    async def rename_person(name: str, request: Request, key=admin):
        service = current()
        new = _name(await read_request(request, service.config.limits, (), ("name",)))
        await service.gallery_call(lambda g: g.rename_person(name, new))
        return {"name": new, "was": name}

    @app.delete("/v1/people/{name}", tags=["gallery"], summary="forget a person and their faces")
    async def delete_person(name: str, key=admin):
        removed = await current().gallery_call(lambda g: g.remove(name))
        return {"name": name, "faces_removed": removed}

    @app.get("/v1/people/{name}/faces", tags=["gallery"], summary="a person's faces")
    async def faces_of(name: str, key=read):
        records = await current().gallery_call(lambda g: g.faces_of(name))
        return {"name": name, "faces": [{"id": r.id, "source": r.source,
                                         "box": None if r.box is None else [round(float(v), 2) for v in r.box],
                                         "face": r.face_index}
                                        for r in records]}

    @app.post("/v1/people/{name}/faces", tags=["gallery"], status_code=201,
              summary="enrol a person's face from each photo (the largest, unless faces= or face= says)",
              openapi_extra=_body_doc({"faces": "which face of each photo: largest (default), probable, "
                                                 "centre-weighted, nearest-centre",
                                       "face": "instead, the face with this index (as detect and identify number "
                                               "them, most certain first)"}))
    async def add_faces(name: str, request: Request, key=admin):
        service = current()
        data = await read_request(request, service.config.limits, ("images",), ("faces", "face"))
        index = data.option("face", int)
        faces = Selection.ALL if index is not None else _faces(data, "largest")
        images = _images(data, "images")
        results = await service.run(images, FaceTask(FaceOptions(faces), crops=True), embed=True)
        if index is not None:
            for (label, _), result in zip(images, results):
                result.faces = [f for f in result.faces if f.index == index]
                if result.status.ok and not result.faces:
                    raise RequestError(422, "no_face", f"{label}: it has no face {index} (identify numbers the "
                                                       "faces of a photo from 0); nothing was enrolled.", "face")
        photos = [EnrolledPhoto(name, result, source_digest(raw)) for (_, raw), result in zip(images, results)]
        report = await service.gallery_call(lambda g: g.enrol_results(photos, service.fn.description))
        if not report.added and not report.skipped:
            first_source, first_status = report.failures[0]
            raise RequestError(422, "no_face", f"{first_source}: {first_status}; nothing was enrolled and {name!r} "
                                               "was not made. Send photos with a face of the person.", first_source)
        return {"model": service.model, "name": name,
                "added": [{"id": i, "input": source, "face": face}
                          for i, (_, source, face) in zip(report.ids, report.added)],
                "skipped": [{"input": source, "face": face, "enrolled_as": who}
                            for source, face, who in report.skipped],
                "failures": [{"input": source, "status": str(status)} for source, status in report.failures]}

    @app.get("/v1/people/{name}/faces/{face_id}/thumbnail", tags=["gallery"], summary="a face as a small JPEG",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def face_thumbnail(name: str, face_id: int, key=read):
        def work(g: Gallery) -> bytes:
            _check_face_of(g, name, face_id)
            data = g.thumbnail(face_id)
            if data is None:
                raise RequestError(404, "no_thumbnail", f"face {face_id} of {name!r} was enrolled without a "
                                                        "thumbnail (before they were kept); enrol it again to have one.")
            return data

        return Response(await current().gallery_call(work), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/me", tags=["operations"], summary="what the key sent may do (read or admin), and the model")
    async def me(key=read):
        service = current()
        return {"scope": "admin" if key is None else key.scope.value, "key": None if key is None else key.name,
                "keys": service.keys is not None, "model": service.model}

    mount_page(app)

    @app.delete("/v1/people/{name}/faces/{face_id}", tags=["gallery"], summary="forget one face")
    async def delete_face(name: str, face_id: int, key=admin):
        def work(g: Gallery):
            _check_face_of(g, name, face_id)
            return g.remove_face(face_id)

        record = await current().gallery_call(work)
        return {"id": record.id, "name": record.name, "source": record.source}

    return app


def _check_face_of(g: Gallery, name: str, face_id: int) -> None:
    """Refuse a face id that is not one of ``name``'s (the routes address a face through its person)."""
    if face_id not in {r.id for r in g.faces_of(name)}:
        raise UnknownPersonError(f"{name!r} has no face {face_id}; GET /v1/people/{name}/faces lists them.")


def _top_k(value: int) -> int:
    if not 1 <= value <= MAX_TOP_K:
        raise RequestError(422, "bad_field", f"top_k={value}: give 1 to {MAX_TOP_K}.", "top_k")
    return value


def _name(data: RequestData) -> str:
    """A person's name as the gallery would store it (see ``check_name``), or a 422."""
    name = data.options.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RequestError(422, "bad_field", "name: send the person's name, a non-empty string.", "name")
    try:
        return check_name(name)
    except BadNameError as exc:
        raise RequestError(422, "bad_field", str(exc), "name") from None


def _embedding(value, dim: int) -> np.ndarray:
    """A sent embedding as a unit vector of the model's length, or a 422 saying what is wrong."""
    try:
        vector = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        vector = np.zeros(0)
    wrong = (f"{vector.size} numbers" if vector.ndim != 1 or vector.shape != (dim,) else
             "numbers that are not finite" if not np.isfinite(vector).all() else
             "all zeros" if not np.linalg.norm(vector) > 0 else None)
    if wrong:
        raise RequestError(422, "bad_embedding", f"embedding: {wrong}; send the {dim} numbers of one face's "
                                                 f"embedding with this service's model (as /v1/embed gives them).",
                           "embedding")
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _search(gallery: Gallery, service: Service, vectors: np.ndarray, top_k: int) -> list:
    if gallery.model:  # not len(gallery): COUNT(*) reads every row of a large gallery
        gallery.check_model(service.fn.description)
    return search_people(vectors, gallery, top_k)


def factory() -> FastAPI:
    """The app of a uvicorn worker process: its config comes in the environment (``ServeConfig.to_env``)."""
    config = ServeConfig.from_env()
    log_requests(config.access_log)
    return create_app(config)
