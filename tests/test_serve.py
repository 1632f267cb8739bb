"""`facenet-offline serve` as clients meet it: the real server on a loopback port, called over HTTP."""

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facenet_offline import FaceNet
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.samples import PEOPLE, PROBES
from facenet_offline.serve import keys
from facenet_offline.serve.child import ServerProcess

TONY, TONY3, COLIN, GENE = (PEOPLE / "Tony_Blair" / "Tony_Blair_0001.jpg", PROBES / "Tony_Blair_0003.jpg",
                            PEOPLE / "Colin_Powell" / "Colin_Powell_0001.jpg", PROBES / "Gene_Robinson_0003.jpg")


def Server(tmp: Path, *args: str) -> ServerProcess:
    """``facenet-offline serve`` with ``args`` in a child process on a free loopback port, ready."""
    return ServerProcess(tmp / "serve.log", *args).start()


GRACEFUL = (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return path, keys.add_key(path, "back-office", "admin"), keys.add_key(path, "door-camera", "read")


@pytest.fixture(scope="module")
def server(tmp_path_factory, keyfile, built_default, built_mtcnn):
    tmp = tmp_path_factory.mktemp("serve")
    srv = Server(tmp, "--gallery", str(tmp / "gallery"), "--api-keys", str(keyfile[0]), "--max-images", "6",
                 "--max-request-mb", "1", "--max-pixels", "20000000", "--max-wait-ms", "100")
    yield srv
    assert srv.stop() in GRACEFUL and "Traceback" not in srv.log.read_text()


@pytest.fixture(scope="module")
def admin(server, keyfile):
    with server.client(keyfile[1]) as client:
        yield client


def _files(*paths, field="images"):
    return [(field, (Path(p).name, Path(p).read_bytes(), "image/jpeg")) for p in paths]


def _b64(path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def test_every_endpoint_on_real_photos(server, admin):
    assert admin.get("/healthz").json()["status"] == "ok" and admin.get("/readyz").status_code == 200
    detected = admin.post("/v1/detect", files=_files(GENE, TONY)).json()
    gene = detected["images"][0]
    assert detected["model"]["model"] == "casia-webface" and detected["model"]["precision"] == "fp32"
    assert gene["input"] == "images[0] (Gene_Robinson_0003.jpg)" and len(gene["faces"]) == 2
    assert len(gene["faces"][0]["box"]) == 4 and len(gene["faces"][0]["landmarks"]) == 5
    as_json = admin.post("/v1/detect", json={"images": [_b64(GENE)]}).json()["images"][0]
    assert as_json["faces"] == gene["faces"]  # multipart and base64 are the same image

    embedded = admin.post("/v1/embed", files=_files(GENE), data={"faces": "all"}).json()["images"][0]
    assert [len(f["embedding"]) for f in embedded["faces"]] == [512, 512]
    crop = FaceNet().detect(TONY, crops=True)[0].crop
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    ready = admin.post("/v1/embed", json={"images": [base64.b64encode(buf.getvalue()).decode()],
                                          "embed_only": True}).json()["images"][0]
    assert len(ready["faces"]) == 1 and ready["faces"][0]["score"] is None

    verified = admin.post("/v1/verify", files=_files(TONY, field="probe") + _files(TONY3, COLIN, field="targets"),
                          data={"far": "0.001"}).json()
    assert [t["same"] for t in verified["targets"]] == [True, False]
    assert verified["operating_point"]["threshold"] == 0.993 and verified["model"]["model"] == "casia-webface"

    assert admin.post("/v1/people", json={"name": "Tony Blair"}).status_code == 201
    added = admin.post("/v1/people/Tony Blair/faces", files=_files(TONY, PEOPLE / "Tony_Blair" / "Tony_Blair_0002.jpg"))
    assert added.status_code == 201 and len(added.json()["added"]) == 2
    assert admin.post("/v1/people/Colin Powell/faces", files=_files(COLIN)).status_code == 201
    again = admin.post("/v1/people/Tony Blair/faces", files=_files(TONY)).json()
    assert again["added"] == [] and again["skipped"][0]["enrolled_as"] == "Tony Blair"
    people = admin.get("/v1/people").json()["people"]
    assert [(p["name"], p["faces"]) for p in people] == [("Colin Powell", 1), ("Tony Blair", 2)]
    thumb = admin.get(f"/v1/people/Colin Powell/faces/{people[0]['thumbnail_face']}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(thumb.content)).size == (96, 96)
    who = admin.post("/v1/identify", files=_files(TONY3, GENE), data={"top_k": "2"}).json()
    assert who["operating_point"]["far_target"] == 0.001
    assert [f["identity"] for i in who["images"] for f in i["faces"]] == ["Tony Blair", "unknown", "unknown"]
    assert len(who["images"][0]["faces"][0]["matches"]) == 2

    vector = admin.post("/v1/embed", files=_files(TONY3), data={"faces": "largest"}).json()["images"][0]["faces"][0]
    found = admin.post("/v1/search", json={"embedding": vector["embedding"], "top_k": 1}).json()
    # Equal up to the float32 rounding of a batch of another size (the two requests may be batched differently).
    assert found["identity"] == "Tony Blair"
    assert found["distance"] == pytest.approx(who["images"][0]["faces"][0]["distance"], abs=1e-5)

    faces = admin.get("/v1/people/Tony Blair/faces").json()["faces"]
    assert admin.delete(f"/v1/people/Tony Blair/faces/{faces[0]['id']}").status_code == 200
    assert admin.patch("/v1/people/Tony Blair", json={"name": "T. Blair"}).json() == {"name": "T. Blair",
                                                                                       "was": "Tony Blair"}
    renamed = admin.get("/v1/people").json()["people"][1]
    assert (renamed["name"], renamed["faces"]) == ("T. Blair", 1)
    assert admin.delete("/v1/people/Colin Powell").json()["faces_removed"] == 1

    metrics = admin.get("/metrics").text
    assert 'facenet_requests_total{route="/v1/identify",status="200"}' in metrics
    assert "facenet_batch_images_count" in metrics and "facenet_queue_images" in metrics
    schema = admin.get("/openapi.json").json()
    assert {"/v1/detect", "/v1/embed", "/v1/verify", "/v1/identify", "/v1/search", "/v1/people",
            "/v1/people/{name}/faces"} <= set(schema["paths"])
    assert admin.get("/docs").status_code == 200


def _bomb() -> bytes:
    """A PNG whose header promises 60000 x 60000 pixels (3.6 GB decoded) in a few hundred bytes."""
    buf = io.BytesIO()
    Image.new("L", (64, 64)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # and its checksum, so it reads as valid
    return bytes(data)


def test_every_kind_of_bad_input_gets_its_4xx_and_the_server_goes_on(server, admin, tmp_path):
    jpeg = TONY.read_bytes()
    cases = [  # (what, request, status, code)
        ("not a body it reads", dict(content=b"hi", headers={"content-type": "text/plain"}), 415,
         "unsupported_media_type"),
        ("broken JSON", dict(content=b"{images:", headers={"content-type": "application/json"}), 400, "bad_json"),
        ("JSON that is not an object", dict(json=[1, 2]), 400, "bad_json"),
        ("bad base64", dict(json={"images": ["not base64!"]}), 422, "bad_base64"),
        ("a URL", dict(json={"images": ["https://example.com/face.jpg"]}), 422, "not_image_data"),
        ("a server-side path", dict(json={"images": ["/etc/passwd"]}), 422, "bad_base64"),
        ("a path in a form field", dict(data={"images": "/etc/passwd"}), 422, "not_a_file"),
        ("no images", dict(json={}), 422, "missing_images"),
        ("too many images", dict(files=_files(*[TONY] * 7)), 413, "too_many_images"),
        ("too large a body", dict(files=[("images", ("big.jpg", os.urandom(1_200_000), "image/jpeg"))]), 413,
         "upload_too_large"),
        ("a decompression bomb", dict(files=[("images", ("bomb.png", _bomb(), "image/png"))]), 422,
         "too_many_pixels"),
        ("text named .jpg", dict(files=[("images", ("notes.jpg", b"name,age\nann,3\n", "image/jpeg"))]), 422,
         "not_an_image"),
        ("a truncated JPEG", dict(files=[("images", ("cut.jpg", jpeg[:len(jpeg) // 2], "image/jpeg"))]), 422,
         "corrupt"),
        ("an empty file", dict(files=[("images", ("empty.jpg", b"", "image/jpeg"))]), 422, "empty"),
        ("an unknown face choice", dict(files=_files(TONY), data={"faces": "biggest"}), 422, "bad_field"),
    ]
    for what, request, status, code in cases:
        answer = admin.post("/v1/embed", **request)
        assert answer.status_code == status and answer.json()["error"]["code"] == code, (what, answer.text)
        assert answer.json()["error"]["message"], what
    other = [  # other routes, other refusals
        (admin.post("/v1/identify", files=_files(TONY), data={"top_k": "0"}), 422, "bad_field"),
        (admin.post("/v1/identify", files=_files(TONY), data={"far": "0.005"}), 422, "bad_operating_point"),
        (admin.post("/v1/verify", files=_files(TONY, field="probe") + _files(TONY3, field="targets"),
                    data={"faces": "all"}), 422, "bad_field"),
        (admin.post("/v1/search", json={"embedding": [0.1] * 10}), 422, "bad_embedding"),
        (admin.delete("/v1/people/Nobody"), 404, "not_found"),
    ]
    for answer, status, code in other:
        assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
    assert admin.post("/v1/people", json={"name": "Ann"}).status_code == 201
    taken = admin.post("/v1/people", json={"name": "Ann"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "name_taken"
    mixed = admin.post("/v1/detect", files=_files(TONY) + [("images", ("notes.jpg", b"text", "image/jpeg"))]).json()
    assert [i["status"] for i in mixed["images"]][0] == "ok" and mixed["images"][1]["error"]["code"] == "not_an_image"
    assert admin.get("/healthz").json()["status"] == "ok"  # still serving
    assert server.proc.poll() is None


def test_what_a_new_user_tried_is_answered_by_name(server, admin, tmp_path):
    """Mistakes a first user made: each refused with its code and the field, none silently ignored."""
    Image.new("RGB", (200, 200), "grey").save(tmp_path / "blank.png")
    cases = [  # (request, status, code, field)
        (admin.post("/v1/identify", files=_files(TONY), data={"topk": "1"}), 422, "unknown_field", "topk"),
        (admin.post("/v1/detect", json={"image": [_b64(TONY)]}), 422, "unknown_field", "image"),
        (admin.post("/v1/identify", files=_files(TONY), data={"threshold": "5"}), 422, "bad_operating_point",
         "threshold"),
        (admin.post("/v1/people", json={"name": "a/b"}), 422, "bad_field", "name"),
        (admin.post("/v1/people", json={"name": "Unknown"}), 422, "bad_field", "name"),
        (admin.post("/v1/people", json={"name": "x" * 300}), 422, "bad_field", "name"),
        (admin.post("/v1/people/unknown/faces", files=_files(TONY)), 422, "bad_field", "name"),  # not by the URL
        (admin.patch("/v1/people/Nobody", json={"name": "UNKNOWN"}), 422, "bad_field", "name"),
        (admin.post("/v1/people/Nobody%20Here/faces", files=_files(tmp_path / "blank.png")), 422, "no_face",
         "images[0] (blank.png)"),
        (admin.get("/v1/nothing"), 404, "not_found", None),
        (admin.put("/v1/people"), 405, "method_not_allowed", None),
    ]
    for answer, status, code, field in cases:
        assert "error" in answer.json(), (answer.request.url, answer.status_code, answer.text[:300])
        error = answer.json()["error"]
        assert (answer.status_code, error["code"], error.get("input")) == (status, code, field), answer.text
    assert not {"Nobody Here", "unknown"} & {p["name"] for p in admin.get("/v1/people").json()["people"]}
    dont_know = admin.post("/v1/verify", files=_files(TONY, field="probe") + _files(TONY3, field="targets"),
                           data={"far": "0.001", "threshold": "1"}).json()["error"]
    assert "not both" in dont_know["message"] and dont_know["input"] == "threshold, far"
    # A browser's data URL is an image; an unreadable image's status is the word "error", its code beside it.
    data_url = "data:image/jpeg;base64," + _b64(TONY)
    mixed = admin.post("/v1/detect", json={"images": [data_url, base64.b64encode(b"text").decode()]}).json()
    assert [(i["status"], i["size"] is None) for i in mixed["images"]] == [("ok", False), ("error", True)]
    assert mixed["images"][1]["error"]["code"] == "not_an_image"
    # The API description works offline and shows where the key goes.
    page = admin.get("/docs").text
    assert "cdn." not in page and "/static-offline-docs/swagger-ui-bundle.js" in page
    assert admin.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    schemes = admin.get("/openapi.json").json()["components"]["securitySchemes"]
    assert list(schemes.values()) == [{"type": "apiKey", "in": "header", "name": "X-API-Key",
                                       "description": schemes[next(iter(schemes))]["description"]}]


def test_keys_decide_who_may_do_what(server, keyfile):
    _, admin_key, read_key = keyfile
    with server.client() as nobody, server.client("not-a-key") as stranger, server.client(read_key) as reader:
        assert nobody.post("/v1/detect", files=_files(TONY)).json()["error"]["code"] == "missing_key"
        wrong = stranger.post("/v1/detect", files=_files(TONY))
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_key"
        assert reader.post("/v1/detect", files=_files(TONY)).status_code == 200
        assert reader.get("/v1/people").status_code == 200
        refused = reader.post("/v1/people", json={"name": "Eve"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert reader.delete("/v1/people/Ann").status_code == 403
    stored = keyfile[0].read_text()
    assert admin_key not in stored and read_key not in stored and keys.digest(read_key) in stored
    log = server.log.read_text()
    assert admin_key not in log and read_key not in log and "not-a-key" not in log
    assert json.loads(log.splitlines()[-1])["route"]  # structured access log lines


def test_batched_results_equal_unbatched_ones(server, admin, lfw_dir):
    photos = [image_path(lfw_dir, name, k) for name in ("Tony_Blair", "Colin_Powell", "George_W_Bush") for k in (1, 2)]
    before = admin.get("/metrics").text
    with ThreadPoolExecutor(len(photos)) as pool:  # concurrent requests, batched by the server
        answers = list(pool.map(lambda p: admin.post("/v1/embed", files=_files(p), data={"faces": "largest"}).json(),
                                photos))
    fn = FaceNet()
    for photo, answer in zip(photos, answers):
        alone = fn.embed(photo)[0]
        served = answer["images"][0]["faces"][0]
        assert np.array_equal(np.array(served["embedding"], np.float32), alone.embedding)
        assert np.allclose(served["box"], alone.box, atol=0.01)
    after = admin.get("/metrics").text

    def runs_of_one(text):
        return float(text.split('facenet_batch_images_bucket{le="1.0"} ')[1].split()[0])

    def runs(text):
        return float(text.split("facenet_batch_images_count ")[1].split()[0])

    assert runs(after) - runs(before) < len(photos)  # some images ran together
    assert runs_of_one(after) - runs_of_one(before) < runs(after) - runs(before) or runs(after) - runs(before) == 1


def test_identify_goes_on_while_people_are_enrolled(server, admin):
    admin.post("/v1/people/Serena/faces", files=_files(PEOPLE / "Serena_Williams" / "Serena_Williams_0001.jpg"))
    errors, seen = [], []

    def identify_many():
        for _ in range(6):
            answer = admin.post("/v1/identify", files=_files(PROBES / "Serena_Williams_0003.jpg"))
            if answer.status_code != 200:
                errors.append(answer.text)
            else:
                seen.append(answer.json()["images"][0]["faces"][0]["identity"])

    readers = [threading.Thread(target=identify_many) for _ in range(2)]
    for t in readers:
        t.start()
    for k, person in enumerate(("Colin_Powell", "Tony_Blair")):
        photos = sorted((PEOPLE / person).iterdir())
        assert admin.post(f"/v1/people/{person}{k}/faces", files=_files(*photos)).status_code == 201
    for t in readers:
        t.join()
    assert not errors and seen and set(seen) == {"Serena"}


def test_two_workers_share_the_gallery_and_count_together(tmp_path, built_default, built_mtcnn):
    srv = Server(tmp_path, "--gallery", str(tmp_path / "g"), "--workers", "2", "--threads", "1")
    try:
        with srv.client() as client:
            assert client.post("/v1/people/Tony/faces", files=_files(TONY)).status_code == 201

        def identify(_):  # a connection each: the workers take turns at them
            with srv.client() as client:
                return client.post("/v1/identify", files=_files(TONY3)).json()["images"][0]["faces"][0]["identity"]

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(identify, range(8))) == ["Tony"] * 8
        for _ in range(4):  # whichever worker answers, /metrics counts both
            with srv.client() as client:
                metrics = client.get("/metrics").text
            assert "facenet_images_total 9.0" in metrics, metrics
            assert 'facenet_requests_total{route="/v1/identify",status="200"} 8.0' in metrics
    finally:
        assert srv.stop() in GRACEFUL
    said = srv.log.read_text()
    assert "with 2 workers of 1 thread each" in said
    assert said.count('"route": "/v1/identify", "status": 200') == 8  # every worker writes the access log


def test_a_full_queue_and_a_timeout_are_answered_not_held(tmp_path, keyfile, built_default, built_mtcnn):
    srv = Server(tmp_path, "--gallery", str(tmp_path / "g"), "--max-queue", "2", "--max-wait-ms", "400",
                 "--timeout", "30")
    try:
        with srv.client() as client, ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.post("/v1/detect", files=_files(TONY, COLIN)), range(4)))
        busy = [a for a in answers if a.status_code == 503]
        assert busy and all(a.headers["retry-after"] == "1" and a.json()["error"]["code"] == "busy" for a in busy)
        assert any(a.status_code == 200 for a in answers)
    finally:
        assert srv.stop() in GRACEFUL
    slow = Server(tmp_path, "--gallery", str(tmp_path / "g"), "--timeout", "0.001", "--max-wait-ms", "50")
    try:
        with slow.client() as client:
            answer = client.post("/v1/detect", files=_files(TONY))
            assert answer.status_code == 504 and answer.json()["error"]["code"] == "timeout"
            assert client.get("/readyz").status_code == 200
    finally:
        slow.stop()


def test_sigterm_finishes_the_requests_in_flight(tmp_path, built_default, built_mtcnn, lfw_dir):
    srv = Server(tmp_path, "--gallery", str(tmp_path / "g"), "--max-wait-ms", "300")
    photos = [image_path(lfw_dir, "George_W_Bush", k) for k in range(1, 25)]
    with srv.client() as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/v1/embed", files=_files(*photos))
        time.sleep(0.15)  # the request is in: its 24 images are being decoded, detected and embedded
        assert srv.stop() in GRACEFUL
        answer = pending.result()
    assert answer.status_code == 200 and len(answer.json()["images"]) == 24


def test_an_open_port_needs_keys():
    done = subprocess.run([sys.executable, "-m", "facenet_offline.cli", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--api-keys FILE" in done.stderr and "--insecure" in done.stderr


def test_a_server_killed_while_enrolling_keeps_every_committed_change(tmp_path, built_default, built_mtcnn, lfw_dir):
    gallery = tmp_path / "g"
    srv = Server(tmp_path, "--gallery", str(gallery))
    with srv.client() as client:
        assert client.post("/v1/people/Colin/faces", files=_files(COLIN)).status_code == 201
        many = [image_path(lfw_dir, "George_W_Bush", k) for k in range(1, 31)]
        posting = threading.Thread(target=lambda: _try(lambda: client.post("/v1/people/George/faces",
                                                                           files=_files(*many[:6]))))
        posting.start()
        time.sleep(0.8)  # inside the enrolment: its photos are being detected and embedded, or written
        srv.stop(signal.SIGKILL)
        posting.join()
    srv.start()  # the same gallery, after the kill
    with srv.client() as client:
        people = {p["name"]: p["faces"] for p in client.get("/v1/people").json()["people"]}
        assert people.get("Colin") == 1 and people.get("George", 0) in (0, 6)  # all of an enrolment, or none
        who = client.post("/v1/identify", files=_files(PEOPLE / "Colin_Powell" / "Colin_Powell_0002.jpg")).json()
        assert who["images"][0]["faces"][0]["identity"] == "Colin"  # the index agrees with the database
    srv.stop()


def _try(call):
    try:
        call()
    except httpx.TransportError:
        pass  # the server died under it, as meant


def test_the_batcher_holds_no_lone_image_and_waits_for_images_on_their_way(built_default, built_mtcnn):
    from facenet_offline.data.images import as_source, load_image
    from facenet_offline.face_loop import FaceTask
    from facenet_offline.serve.batcher import Batcher, BatchLimits

    fn, sizes = FaceNet(), []
    hour = BatchLimits(max_batch=8, max_wait_ms=3_600_000)  # a batch that waited for nothing would never end
    batcher = Batcher(fn.detector, fn.embedder, hour, on_batch=lambda images, faces: sizes.append(images))
    tony, colin = (as_source(p) for p in (TONY, COLIN))
    item = [(tony, load_image(tony), FaceTask(), True)]
    try:
        (alone,) = batcher.submit(item)
        assert len(alone.result(timeout=60).faces) == 1 and sizes == [1]  # nothing was coming: not held
        with batcher.coming(1) as announced:  # another request is decoding its one image
            (first,) = batcher.submit(item)
            time.sleep(0.5)
            assert not first.done()  # waits for it
            (second,) = batcher.submit([(colin, load_image(colin), FaceTask(), True)], announced)
            # it came: the batch runs at once, though the announcing request has not finished yet
            assert second.result(timeout=60).source == colin.label and first.result(timeout=60).faces
        assert sizes == [1, 2]
        with batcher.coming(2):  # a request whose two images were unreadable: nothing more to wait for after it
            (third,) = batcher.submit(item)
        assert third.result(timeout=60).faces and sizes == [1, 2, 1]
    finally:
        batcher.close()
