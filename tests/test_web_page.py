"""The service's web page in a real browser: Debian's chromium, driven by Playwright, against the real server.

Playwright's own browser downloads cannot reach the network here, so it is pointed at the system's
chromium (``make test`` installs it). With ``FACENET_OFFLINE_SCREENSHOTS=DIR`` the tests save the
screenshots the README shows (``make screenshots`` writes them to docs/screenshots).
"""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from facenet_offline.samples import PEOPLE, PROBES
from facenet_offline.serve import keys
from facenet_offline.serve.child import ServerProcess

TONY, TONY3 = PEOPLE / "Tony_Blair" / "Tony_Blair_0001.jpg", PROBES / "Tony_Blair_0003.jpg"
COLIN, COLIN3 = PEOPLE / "Colin_Powell" / "Colin_Powell_0001.jpg", PROBES / "Colin_Powell_0003.jpg"
GENE = PROBES / "Gene_Robinson_0003.jpg"  # two faces, one small at the photo's edge
SHOTS = os.environ.get("FACENET_OFFLINE_SCREENSHOTS")


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("no chromium on PATH: install Debian's package (apt-get install chromium; make test does)")
    return found


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


def _serve(tmp: Path, *args: str) -> ServerProcess:
    return ServerProcess(tmp / "serve.log", "--gallery", str(tmp / "gallery"), "--max-request-mb", "1", *args).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory, built_default, built_mtcnn):
    """An open server (no keys: this machine only) with Tony Blair enrolled."""
    srv = _serve(tmp_path_factory.mktemp("page"))
    with srv.client() as client:
        answer = client.post("/v1/people/Tony%20Blair/faces", files=[("images", (TONY.name, TONY.read_bytes()))])
        assert answer.status_code == 201, answer.text
    yield srv
    srv.stop()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#app:not([hidden])")
    yield page
    context.close()


def shot(page, name: str, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=full_page)


def upload(page, *paths) -> None:
    page.set_input_files("#file-input", [str(p) for p in paths])


def labels(page, figure: int = 0) -> list[str]:
    """The names drawn on the boxes of the ``figure``-th photo (the newest first), once drawn."""
    fig = page.locator("figure.photo").nth(figure)
    fig.locator("figcaption").wait_for()
    page.wait_for_function("() => !document.querySelector('figure.photo[aria-busy]')")
    return [t.split("\n")[0].strip() for t in fig.locator(".face .label").all_inner_texts()]


def test_a_photo_of_an_enrolled_person_shows_their_name_on_the_box(page):
    upload(page, TONY3)
    names = labels(page)
    assert len(names) == 1 and names[0].startswith("Tony Blair")
    assert page.locator(".face.known .distance").inner_text().strip().startswith("0.")  # the distance, readable
    page.locator(".face").first.click()
    panel = page.locator("#face-panel")
    assert panel.is_visible() and panel.locator("#face-summary").inner_text().startswith("Tony Blair: distance 0.")
    panel.locator("#face-how summary").click()
    point = panel.locator("#face-point").inner_text()  # the operating point used, in words
    assert "squared L2 distance to someone is below 0.99" in point and "false-accept rate of 0.001" in point
    assert "below 0.99" in page.locator("#legend").inner_text()  # what the number on a box is
    shot(page, "recognised.png")


def test_every_label_stays_on_its_photo(page):
    upload(page, GENE)
    assert len(labels(page)) == 2
    page.wait_for_function("() => document.querySelector('figure.photo img').complete")
    photo = page.locator("figure.photo img").first.bounding_box()
    for label in page.locator(".face .label").all():
        box = label.bounding_box()
        assert photo["x"] - 4 <= box["x"] and box["x"] + box["width"] <= photo["x"] + photo["width"] + 4


def test_enrol_an_unknown_face_from_the_page_then_see_them_recognised_then_delete_them(page):
    upload(page, COLIN)
    assert labels(page)[0].startswith("unknown")
    page.locator("figure.photo").first.locator(".face").first.click()
    assert page.locator("#face-summary").inner_text().startswith("Unknown: no one is below the threshold")
    assert page.locator("#face-matches li").first.inner_text().startswith("Tony Blair: 1.")  # the top-k matches
    page.fill("#enrol-name", "Colin Powell")
    shot(page, "enrol.png")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#messages .info >> text=Enrolled")
    assert labels(page)[0].startswith("Colin Powell")  # the same photo, recognised now
    upload(page, COLIN3)
    assert labels(page)[0].startswith("Colin Powell")  # another photo of him
    person = page.locator("#people .person", has_text="Colin Powell")
    assert "1 face" in person.inner_text() and person.locator("img.thumb").count() == 1  # a thumbnail of him

    # names the gallery refuses are explained, and nothing is enrolled
    page.locator("figure.photo").first.locator(".face").first.click()
    for bad, said in (("unknown", "no one can be called that"), ("A/B", 'cannot hold a "/"')):
        page.fill("#enrol-name", bad)
        page.click("#enrol-form button[type=submit]")
        page.wait_for_selector(f"#messages .error >> text={said}")
    # a second face of him, added to the person he is already
    page.fill("#enrol-name", "Colin Powell")
    page.click("#enrol-form button[type=submit]")
    expect(person).to_contain_text("2 faces")
    person.click()
    page.wait_for_selector("#person:not([hidden])")
    expect(page.locator("#person-faces li")).to_have_count(2)
    assert "images[" not in page.locator("#person-faces").inner_text()  # the file's name, not the API's label
    shot(page, "gallery.png")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#person-faces li button.danger").first.click()
    page.wait_for_selector("#messages .info >> text=Deleted the face from Colin_Powell_0001.jpg from Colin Powell")
    expect(page.locator("#person-faces li")).to_have_count(1)
    expect(person).to_contain_text("1 face")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-person")
    page.wait_for_selector("#messages .info >> text=Deleted Colin Powell")
    expect(page.locator("#people .person", has_text="Colin Powell")).to_have_count(0)  # the list redrawn
    # and both photos on the page are asked about again: no stale name
    expect(page.locator("figure.photo .face.known")).to_have_count(0)
    assert labels(page, 0)[0].startswith("unknown") and labels(page, 1)[0].startswith("unknown")


def test_bad_files_no_face_too_big_and_busy_are_shown(page, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    upload(page, text)
    page.wait_for_selector("figure.photo figcaption.error")
    caption = page.locator("figure.photo figcaption.error").first.inner_text()
    assert caption.count("notes.jpg") == 1 and "not an image" in caption and "images[" not in caption
    assert page.locator("#messages p").count() == 0  # said once, under its photo
    shot(page, "error.png")

    sky = tmp_path / "sky.png"
    Image.new("RGB", (300, 200), (90, 140, 200)).save(sky)
    upload(page, sky)
    page.wait_for_selector("figure.photo figcaption.error >> text=no face found")

    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(1_300_000))  # over the server's --max-request-mb 1
    upload(page, big)
    page.wait_for_selector("figure.photo figcaption.error >> text=too big for this server (413)")

    page.route("**/v1/identify", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "2", "Content-Type": "application/json"},
        body='{"error": {"code": "busy", "message": "the queue is full"}}'))
    upload(page, TONY3)
    page.wait_for_selector("figure.photo figcaption.error >> text=The server is busy (503)")
    assert "Try again in 2 s" in page.locator("figure.photo figcaption.error").first.inner_text()


def test_usable_on_a_phone_sized_window_and_from_the_keyboard(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#app:not([hidden])")
    upload(page, TONY3)
    labels(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the side
    box = page.locator("figure.photo img").first.bounding_box()
    assert box["width"] <= 390
    # from the file chooser, Tab reaches the face's box; Enter opens it, Escape closes it
    page.focus("#file-input")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('face')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('face')")
    page.keyboard.press("Enter")
    assert page.locator("#face-panel").is_visible()
    # the panel is a sheet over the screen's foot, and the chosen face stays in view above it
    face, sheet = page.locator(".face.selected").bounding_box(), page.locator("#face-panel").bounding_box()
    assert face["y"] >= 0 and face["y"] + face["height"] <= sheet["y"]
    shot(page, "phone.png", full_page=False)  # what the phone's screen shows
    page.keyboard.press("Escape")
    assert page.locator("#face-panel").is_hidden()
    context.close()


def test_with_keys_the_page_asks_for_one_and_a_read_key_sees_no_changes(browser, tmp_path, built_default,
                                                                        built_mtcnn):
    keyfile = tmp_path / "keys.json"
    admin, reader = keys.add_key(keyfile, "office", "admin"), keys.add_key(keyfile, "camera", "read")
    srv = _serve(tmp_path, "--api-keys", str(keyfile))
    try:
        with srv.client(admin) as client:
            assert client.post("/v1/people/Tony%20Blair/faces",
                               files=[("images", (TONY.name, TONY.read_bytes()))]).status_code == 201
        context = browser.new_context()
        page = context.new_page()
        page.goto(srv.url + "/")
        page.wait_for_selector("#key-panel:not([hidden])")
        page.fill("#key-input", "not-a-key")
        page.click("#key-form button")
        page.wait_for_selector("#messages >> text=not one of this service's")
        page.fill("#key-input", reader)
        page.click("#key-form button")
        page.wait_for_selector("#app:not([hidden])")
        expect(page.locator("#messages p")).to_have_count(0)  # the refusal of the wrong key is gone
        assert page.locator("#read-only").is_visible()
        assert page.evaluate("sessionStorage.length") == 1 and page.evaluate("localStorage.length") == 0
        upload(page, TONY3)
        assert labels(page)[0].startswith("Tony Blair")
        page.locator(".face").first.click()
        assert page.locator("#enrol-form").is_hidden()  # a read key cannot enrol
        page.locator("#people .person").first.click()
        page.wait_for_selector("#person:not([hidden])")
        assert page.locator("#delete-person").is_hidden() and page.locator("#rename-form").is_hidden()
        assert page.locator("#person-faces button.danger").count() == 0
        page.reload()  # the key stays for the tab
        page.wait_for_selector("#app:not([hidden])")
        context.close()

        context = browser.new_context()  # another tab's session: asked again
        page = context.new_page()
        page.goto(srv.url + "/")
        page.wait_for_selector("#key-panel:not([hidden])")
        page.fill("#key-input", admin)
        page.click("#key-form button")
        page.wait_for_selector("#app:not([hidden])")
        upload(page, TONY3)
        labels(page)
        page.locator(".face").first.click()
        assert page.locator("#enrol-form").is_visible()
        context.close()
    finally:
        srv.stop()
