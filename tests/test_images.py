"""Image intake on real files made here: every kind of odd or broken input decodes right or fails clearly."""

import io
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from facenet_offline.data.images import DEFAULT_MAX_SIDE, decoded_pixels, iter_image_paths, load_image, load_rgb
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.errors import ImageError


@pytest.fixture(scope="module")
def face(lfw_dir):
    """A real LFW photo: its bytes and its pixels."""
    path = image_path(lfw_dir, "Tony_Blair", 1)
    return path.read_bytes(), load_rgb(path)


def _fails(path, *words):
    with pytest.raises(ImageError) as info:
        load_rgb(path)
    message = str(info.value)
    assert str(path) in message and all(w in message for w in words), message


def test_truncated_jpeg(tmp_path, face):
    path = tmp_path / "cut.jpg"
    path.write_bytes(face[0][:len(face[0]) // 2])
    _fails(path, "truncated")


def test_corrupt_jpeg(tmp_path, face):
    data = bytearray(face[0])
    data[len(data) // 2:len(data) // 2 + 200] = b"\xff" * 200  # garbage in the entropy-coded scan
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    _fails(path, "corrupt")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _fails(path, "empty file")


def test_text_file_with_an_image_extension(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("name,age\nann,3\n")
    _fails(path, "not an image")


def test_png_with_alpha_is_composited_on_white(tmp_path, face):
    rgba = np.dstack([face[1], np.full(face[1].shape[:2], 255, np.uint8)])
    rgba[:, :50, 3] = 0  # transparent left band
    rgba[:, 50:100, 3] = 128  # half transparent
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    rgb = load_rgb(path)
    assert rgb.shape == face[1].shape
    assert (rgb[:, :50] == 255).all()
    assert np.array_equal(rgb[:, 100:], face[1][:, 100:])
    half = (face[1][:, 50:100].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(rgb[:, 50:100] - half).max() <= 1.5


def test_grayscale_jpeg_gives_three_equal_channels(tmp_path, face):
    path = tmp_path / "grey.jpg"
    Image.fromarray(face[1]).convert("L").save(path, quality=95)
    rgb = load_rgb(path)
    assert rgb.shape == (250, 250, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])


def test_cmyk_jpeg_comes_back_as_the_same_colours(tmp_path, face):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(face[1]).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    assert np.abs(load_rgb(path).astype(int) - face[1].astype(int)).mean() < 2.0


def test_16_bit_png_is_scaled_not_clipped(tmp_path, face):
    grey = tmp_path / "grey16.png"
    values = np.array([[0, 257 * 128, 65535]], np.uint16)
    Image.fromarray(values).save(grey)  # mode I;16
    assert load_rgb(grey)[0, :, 0].tolist() == [0, 128, 255]
    colour = tmp_path / "rgb48.png"
    cv2.imwrite(str(colour), (face[1][..., ::-1].astype(np.uint16) * 257))  # 16 bits per channel, BGR on disk
    assert np.abs(load_rgb(colour).astype(int) - face[1].astype(int)).max() <= 1


def test_exif_rotated_photo_is_turned_upright(tmp_path, face):
    sideways = Image.fromarray(face[1]).rotate(90, expand=True)  # stored lying on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    sideways.save(path, exif=exif, quality=95)
    decoded = load_image(path)
    assert decoded.size == (250, 250)
    assert np.abs(decoded.pixels.astype(int) - face[1].astype(int)).mean() < 3.0


def test_very_large_image_is_decoded_at_a_bounded_size(tmp_path, face):
    big = Image.new("RGB", (12000, 9000), (120, 110, 100))
    big.paste(Image.fromarray(face[1]).resize((1500, 1500)), (5000, 3000))
    path = tmp_path / "huge.jpg"
    big.save(path, quality=85)
    del big
    decoded = load_image(path)
    assert decoded.size == (9000, 12000)
    assert decoded.pixels.shape == (3072, DEFAULT_MAX_SIDE, 3)
    assert decoded.scale == pytest.approx((DEFAULT_MAX_SIDE / 12000, 3072 / 9000))
    assert decoded_pixels(path) == 3072 * DEFAULT_MAX_SIDE and decoded_pixels(path, None) == 12000 * 9000  # header only
    # The pasted photo is where it should be in the downscaled pixels.
    x, y = round(5750 * decoded.scale[0]), round(3750 * decoded.scale[1])
    assert np.abs(decoded.pixels[y, x].astype(int) - np.array([120, 110, 100])).sum() > 30


def test_symlink_loops_and_odd_names_are_walked_once(tmp_path, face):
    root = tmp_path / "photos with spaces"
    inner = root / "Zoë Ñandú" / "фото"
    inner.mkdir(parents=True)
    (inner / "лицо 1.jpg").write_bytes(face[0])
    (root / "a.jpg").write_bytes(face[0])
    os.symlink(root, inner / "loop")  # a folder link back to the top
    os.symlink("self.jpg", root / "self.jpg")  # a file link to itself
    found = list(iter_image_paths([root]))
    assert sorted(p.name for p in found) == ["a.jpg", "self.jpg", "лицо 1.jpg"]
    assert load_rgb(inner / "лицо 1.jpg").shape == (250, 250, 3)
    _fails(root / "self.jpg", "loop")


def test_broken_link_and_folder_are_clear_errors(tmp_path):
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    _fails(tmp_path / "dangling.jpg", "no such file")
    (tmp_path / "dir.jpg").mkdir()
    _fails(tmp_path / "dir.jpg", "folder")


def test_unreadable_file_is_a_clear_error(tmp_path, face):
    path = tmp_path / "locked.jpg"
    path.write_bytes(face[0])
    path.chmod(0)
    if os.geteuid() != 0:
        _fails(path, "permission denied")
        return
    # root reads anything: check in a child that drops to an unprivileged user.
    tmp_path.chmod(0o755)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setgid(65534)
            os.setuid(65534)
            load_rgb(path)
            message = b"decoded"
        except ImageError as exc:
            message = str(exc).encode()
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            message = repr(exc).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    assert str(path) in message and "permission denied" in message, message


def _samples():
    """Small valid files of several formats to mutate."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (24, 32, 3), np.uint8)
    out = []
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGBA"), ("PNG", "I;16"), ("BMP", "RGB"), ("GIF", "P"),
                      ("TIFF", "CMYK"), ("WEBP", "RGB")):
        img = Image.fromarray(pixels)
        img = img.convert("RGBA").convert(mode) if mode != "I;16" else Image.fromarray(pixels[..., 0].astype(np.uint16) * 200)
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


SAMPLES = _samples()


def _decode_bytes(tmp_path, data: bytes, name: str = "input.jpg"):
    path = tmp_path / name
    path.write_bytes(data)
    assert decoded_pixels(path) >= 0  # whatever the bytes, batching can size them
    try:
        rgb = load_rgb(path)
    except ImageError as exc:
        assert str(path) in str(exc)
        return None
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 1
    return rgb


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_raise_the_documented_error(tmp_path, data):
    _decode_bytes(tmp_path, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(range(len(SAMPLES))), st.data())
def test_mutated_images_decode_or_raise_the_documented_error(tmp_path, which, data):
    raw = bytearray(SAMPLES[which])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    _decode_bytes(tmp_path, bytes(raw[:cut]))
