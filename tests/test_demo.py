"""`segan demo`: its upload checks and object picking, then the page itself in a real headless
Chromium (Debian's, driven by playwright; nothing downloads a browser): a sample loads, a click
on an object shows its full mask, painted appearance and description, "Remove" shows the
scene without it (the very pixels of `segan.deocclude.deocclude`), an uploaded image takes
uploaded masks, a non-image and an oversized file get clear messages, and the page asks for
nothing outside localhost."""

from __future__ import annotations

import io
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segan.demo import (
    DemoInputError,
    DemoModel,
    build_demo,
    load_samples,
    pick_object,
    read_upload,
    serve,
)
from segan.deocclude import deocclude
from segan.inference import SeganPredictor

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [  # gradio's queue calls pandas APIs that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def model(tiny_data, tiny_run) -> DemoModel:
    predictor = SeganPredictor.from_checkpoint(tiny_run, device="cpu")
    return DemoModel(predictor, load_samples(tiny_data, "test", limit=2), max_upload_bytes=60_000)


def _centre_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the mask pixel nearest its centroid."""
    ys, xs = np.nonzero(mask)
    j = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return int(xs[j]), int(ys[j])


def test_uploads_are_checked(tmp_path):
    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    with pytest.raises(DemoInputError, match="notes.png is not an image"):
        read_upload(junk)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 200, 3), np.uint8)).save(big)
    with pytest.raises(DemoInputError, match=r"big.png is 200x300 pixels: images are limited"):
        read_upload(big, max_pixels=200 * 299)
    with pytest.raises(DemoInputError, match=r"big.png is 0.0 MB: uploads are limited"):
        read_upload(big, max_bytes=10)
    assert read_upload(big).shape == (300, 200, 3)


def test_pick_object(model):
    session, _ = model.open_sample(next(iter(model.samples)))
    scene = session.scene
    for k in range(len(scene)):
        x, y = _centre_pixel(scene.visible_masks[k])
        assert pick_object(scene, x + 0.5, y + 0.5) == k
    assert pick_object(scene, -1, 0) is None
    empty = np.flatnonzero(~scene.full_masks.any(0).ravel())
    if empty.size:
        y, x = divmod(int(empty[0]), scene.image_hw[1])
        assert pick_object(scene, x, y) is None


def _occluder(model: DemoModel, name: str) -> tuple[int, np.ndarray]:
    """An object of sample `name` that hides another in the predicted scene (else the
    largest), and the edited image expected when it is removed."""
    sample = model.samples[name]
    scene = model.predictor.predict(sample.image, sample.visible_masks)
    q = (scene.occlusion_pairs[0][0] if scene.occlusion_pairs
         else int(np.argmax(sample.visible_masks.sum((1, 2)))))
    return q, deocclude(sample.image, scene, [q]).image


def test_remove_logic(model):
    name = next(iter(model.samples))
    session, _ = model.open_sample(name)
    assert model.remove(session)[2] == "Click an object first, then Remove."
    q, expected = _occluder(model, name)
    x, y = _centre_pixel(session.scene.visible_masks[q])
    model.click(session, x + 0.5, y + 0.5)
    edited, steps, text = model.remove(session)
    s = session.scale
    np.testing.assert_array_equal(edited[::s, ::s], expected)
    assert edited.shape == (expected.shape[0] * s, expected.shape[1] * s, 3)
    assert steps.shape[0] > 0 and text.startswith(f"**Removed object {q}**")
    assert session.removed == [q]
    others = [k for k in range(len(session.scene)) if k != q]
    x, y = _centre_pixel(session.scene.visible_masks[others[0]])
    model.click(session, x + 0.5, y + 0.5)
    text = model.remove(session)[2]  # a second removal adds to the first
    assert session.removed == sorted([q, others[0]]) and "Removed objects" in text
    assert model.put_back(session) == (None, None, "Nothing removed.")
    assert session.removed == []
    assert "first" in model.remove(None)[2]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (scripts/setup installs it)")
def test_demo_in_a_browser(model, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = serve(build_demo(model), port=port, block=False)
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox"])
            page = browser.new_page()
            page.on("request", lambda r: None if r.url.startswith(
                (f"http://127.0.0.1:{port}", "data:", "blob:")) else outside.append(r.url))
            page.goto(f"http://127.0.0.1:{port}/")
            name = next(iter(model.samples))
            expect(page.locator("#status")).to_contain_text(f"{name}: ", timeout=60_000)
            sample = model.samples[name]
            k = int(np.argmax(sample.visible_masks.sum((1, 2))))  # the largest object
            x, y = _centre_pixel(sample.visible_masks[k])
            _click_pixel(page, "#scene img", x, y, sample.image.shape[:2])
            expect(page.locator("#info")).to_contain_text(f"Object {k}: depth layer",
                                                          timeout=30_000)
            for elem in ("#full img", "#painted img"):
                expect(page.locator(elem)).to_be_visible()
                assert page.locator(elem).get_attribute("src")
            expect(page.locator("#order")).to_contain_text("Occlusion order")

            # "Remove": the chosen object goes, the page shows the scene without it
            q, expected = _occluder(model, name)
            qx, qy = _centre_pixel(sample.visible_masks[q])
            _click_pixel(page, "#scene img", qx, qy, sample.image.shape[:2])
            expect(page.locator("#info")).to_contain_text(f"Object {q}: depth layer",
                                                          timeout=30_000)
            page.locator("#remove").click()
            expect(page.locator("#removal")).to_contain_text(f"Removed object {q}",
                                                             timeout=30_000)
            edited = page.locator("#edited img")
            expect(edited).to_be_visible()
            shown = np.asarray(Image.open(io.BytesIO(
                page.request.get(edited.get_attribute("src")).body())).convert("RGB"))
            s = shown.shape[0] // expected.shape[0]
            np.testing.assert_array_equal(shown[::s, ::s], expected)
            assert (shown[::s, ::s] != sample.image).any()  # the object is gone
            expect(page.locator("#steps img")).to_be_visible()
            page.locator("#put_back").click()
            expect(page.locator("#removal")).to_contain_text("Nothing removed.",
                                                             timeout=30_000)

            # a non-image and an oversized file: messages, not errors
            junk = tmp_path / "notes.png"
            junk.write_text("not an image")
            page.locator("#upload input[type=file]").set_input_files(str(junk))
            expect(page.locator("#status")).to_contain_text("notes.png is not an image",
                                                            timeout=30_000)
            big = tmp_path / "huge.png"
            big.write_bytes(os.urandom(80_000))
            page.locator("#upload input[type=file]").set_input_files(str(big))
            expect(page.locator("#status")).to_contain_text("uploads are limited",
                                                            timeout=30_000)

            # an uploaded image, then its masks as an instance-id PNG; click an object
            image_file = tmp_path / "room.png"
            Image.fromarray(sample.image).save(image_file)
            page.locator("#upload input[type=file]").set_input_files(str(image_file))
            expect(page.locator("#status")).to_contain_text("Now upload its visible masks",
                                                            timeout=30_000)
            ids = np.zeros(sample.image.shape[:2], np.uint8)
            for j, m in enumerate(sample.visible_masks):
                ids[m] = j + 1
            mask_file = tmp_path / "ids.png"
            Image.fromarray(ids).save(mask_file)
            page.locator("#masks input[type=file]").set_input_files(str(mask_file))
            n = len(sample.visible_masks)
            expect(page.locator("#status")).to_contain_text(f"{n} objects from ids.png",
                                                            timeout=30_000)
            _click_pixel(page, "#overlay img", x, y, sample.image.shape[:2])
            expect(page.locator("#info")).to_contain_text(f"Object {k}: depth layer",
                                                          timeout=30_000)
            browser.close()
    finally:
        demo.close()
    assert outside == []  # offline: nothing fetched from outside the demo's server


def _click_pixel(page, selector: str, x: int, y: int, hw: tuple[int, int]) -> None:
    """Click the displayed picture at the centre of image pixel (x, y)."""
    img = page.locator(selector)
    img.wait_for(state="visible", timeout=30_000)
    box = img.bounding_box()
    H, W = hw  # the picture is the image upscaled (display_scale), shown at the box's size
    img.click(position={"x": (x + 0.5) * box["width"] / W, "y": (y + 0.5) * box["height"] / H})
