"""`segan demo`: a local web page (Gradio) to try the predictor.

Pick a sample image (test images of a segan-coco dataset, with their visible masks) or upload
one (with its visible masks as an instance-id PNG, a one-object PNG or a COCO JSON; or found by
the visible segmenter when one is loaded), click an object, and see its full mask, its painted
appearance and where it sits in the scene's occlusion order. "Remove" takes the chosen object
out of the scene (scene de-occlusion, `segan.deocclude`): the objects it hid are drawn back to
front with their painted appearance, the rest of the hole is background (inpainting, or the
trained background completer with ``segan demo --completer RUN``); each further "Remove" adds
the chosen object to the removed ones, "Put back" restores the scene.

Offline and private: Gradio's analytics and version check are off, the Hugging Face hub is
set offline, the page's fonts are Gradio's bundled ones, nothing is shared (share=False), and
the server listens on 127.0.0.1 unless told otherwise.

The page logic lives in plain functions (`DemoModel`), so tests drive it with or without a
browser; `build_demo` only wires them to Gradio components.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segan.deocclude import Fill, deocclude, fill_hole, steps_picture
from segan.inference import SeganPredictor
from segan.pictures import display_scale, overlay
from segan.prediction import ScenePrediction, check_image

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # files above this are refused with a message
MAX_PIXELS = 4096 * 4096  # images above this (width x height) are refused before decoding
# Gradio itself refuses uploads above this (a guard for huge files; ours gives the message)
SERVER_MAX_FILE_SIZE = 4 * MAX_UPLOAD_BYTES


def _offline_env() -> None:
    """Before gradio is imported: no analytics, no version check, no hub calls."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["DO_NOT_TRACK"] = "1"


class DemoInputError(ValueError):
    """An upload the page cannot use; the message is shown to the user."""


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    visible_masks: np.ndarray  # (N, H, W) bool


@dataclass
class Session:
    """One page's current image and its prediction (kept in a gr.State)."""

    name: str
    image: np.ndarray
    scene: ScenePrediction | None = None
    chosen: int | None = None
    removed: list[int] = field(default_factory=list)  # objects taken out by "Remove"

    @property
    def scale(self) -> int:
        """The pictures' integer upscaling (`display_scale`); clicks arrive in that frame."""
        return display_scale(*self.image.shape[:2])


def load_samples(data_dir: str | os.PathLike, split: str = "test", limit: int = 8
                 ) -> list[Sample]:
    """Up to `limit` images of DATA's split with two or more objects, with their S_V."""
    from segan.data.coco import load_annotations
    from segan.train.cache import annotation_path

    ds = load_annotations(annotation_path(data_dir, split), root=data_dir)
    out = []
    for iid in ds.image_ids:
        if len(ds.annotations[iid]) >= 2:
            name = ds.images[iid]["file_name"]
            out.append(Sample(name, ds.load_image(iid), ds.image_masks(iid)[1]))
        if len(out) >= limit:
            break
    return out


def read_upload(path: str | os.PathLike, max_bytes: int = MAX_UPLOAD_BYTES,
                max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An uploaded file -> (H, W, 3) uint8, or DemoInputError saying why not."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    size = path.stat().st_size
    name = path.name
    if size > max_bytes:
        raise DemoInputError(f"{name} is {size / 2**20:.1f} MB: uploads are limited to "
                             f"{max_bytes / 2**20:.0f} MB")
    try:
        with Image.open(path) as im:
            w, h = im.size  # from the header: nothing decoded yet
            if w * h > max_pixels:
                raise DemoInputError(f"{name} is {w}x{h} pixels: images are limited to "
                                     f"{max_pixels:,} pixels (e.g. "
                                     f"{int(max_pixels ** 0.5)}x{int(max_pixels ** 0.5)})")
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise DemoInputError(f"{name} is not an image this page can read (PNG, JPEG, ...): "
                             f"{type(e).__name__}") from None


def read_mask_upload(path: str | os.PathLike, hw: tuple[int, int], image_name: str,
                     max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """Uploaded visible masks for the current image: a COCO JSON (its only image record, or
    the one named like the image), else an instance-id PNG (a binary PNG is one object)."""
    from segan.predict_io import read_id_png, read_json_masks

    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise DemoInputError(f"{path.name}: mask files are limited to "
                             f"{max_bytes / 2**20:.0f} MB")
    try:
        if path.suffix.lower() == ".json":
            return read_json_masks(path, image_name, hw, single=True)
        return read_id_png(path, hw, image_name)
    except ValueError as e:
        raise DemoInputError(str(e).replace(str(path), path.name)) from None


def pick_object(scene: ScenePrediction, x: float, y: float) -> int | None:
    """The object at image pixel (x, y): the one whose S_V holds it; else (a click on a hidden
    part) the front-most object whose predicted S_F holds it; else None."""
    H, W = scene.image_hw
    j, i = int(x), int(y)
    if not (0 <= i < H and 0 <= j < W) or len(scene) == 0:
        return None
    hits = np.flatnonzero(scene.visible_masks[:, i, j])
    if hits.size:
        return int(hits[0])
    hits = np.flatnonzero(scene.full_masks[:, i, j])
    if hits.size:
        return int(min(hits, key=lambda k: (int(scene.layers[k]), k)))
    return None


def _sub_scene(scene: ScenePrediction, k: int) -> ScenePrediction:
    s = slice(k, k + 1)
    return ScenePrediction(
        visible_masks=scene.visible_masks[s], full_masks=scene.full_masks[s],
        invisible_masks=scene.invisible_masks[s], full_probs=scene.full_probs[s],
        painted=scene.painted[s], boxes=scene.boxes[s],
        scores=None if scene.scores is None else scene.scores[s], occlusion_pairs=[],
        layers=scene.layers[s])


def object_pictures(image: np.ndarray, scene: ScenePrediction, k: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Object k's full-mask picture (the overlay of that object alone, its layer number on it)
    and its painted appearance: RGBA cropped to S_F's box, upscaled like the overlay."""
    full = overlay(image, _sub_scene(scene, k))
    ys, xs = np.nonzero(scene.full_masks[k])
    crop = scene.painted[k][ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    s = display_scale(*crop.shape[:2], min_side=256)
    return full, np.repeat(np.repeat(crop, s, 0), s, 1)


def describe_object(scene: ScenePrediction, k: int) -> str:
    o = scene.object(k)
    hidden = int(o.invisible_mask.sum())
    total = int(o.full_mask.sum())
    lines = [f"**Object {k}**: depth layer {o.layer} (0 = front); "
             f"{hidden} of its {total} pixels are hidden ({100 * hidden / max(total, 1):.0f}%)."]
    lines.append(f"Occluded by: {', '.join(map(str, o.occluders)) or 'nothing'}. "
                 f"Occludes: {', '.join(map(str, o.occludees)) or 'nothing'}.")
    if o.score is not None:
        lines.append(f"Visible-segmenter score {o.score:.2f}.")
    return "\n\n".join(lines)


def describe_order(scene: ScenePrediction) -> str:
    """The scene's depth layers, front to back, and its occlusion pairs."""
    if len(scene) == 0:
        return "No objects."
    rows = ["| layer | objects |", "|---|---|"]
    for layer in range(int(scene.layers.max()) + 1):
        objs = np.flatnonzero(scene.layers == layer)
        rows.append(f"| {layer} | {', '.join(map(str, objs))} |")
    pairs = ", ".join(f"{q}→{p}" for q, p in scene.occlusion_pairs) or "none"
    return ("**Occlusion order** (section 5.2: q occludes p when S_V of q covers more than 5% "
            "(IoU) of p's predicted hidden part; cycles broken at the object with the fewest "
            "occluders)\n\n" + "\n".join(rows) + f"\n\nPairs (occluder→occluded): {pairs}")


class DemoModel:
    """The page's behaviour, without Gradio: each method returns what the page shows."""

    def __init__(self, predictor: SeganPredictor, samples: Sequence[Sample],
                 max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
                 fill: Fill = fill_hole):
        self.predictor = predictor
        self.samples = {s.name: s for s in samples}
        self.max_upload_bytes, self.max_pixels = max_upload_bytes, max_pixels
        self.fill = fill  # de-occlusion's background (step 2 of `segan.deocclude`)

    def _predict(self, session: Session, masks: np.ndarray | None) -> Session:
        session.scene = self.predictor.predict(session.image, masks)
        session.chosen = None
        session.removed = []
        return session

    def open_sample(self, name: str) -> tuple[Session, str]:
        if name not in self.samples:
            raise DemoInputError(f"no sample named {name!r}")
        s = self.samples[name]
        session = self._predict(Session(name, s.image), s.visible_masks)
        return session, (f"{name}: {len(session.scene)} objects (their visible masks come with "
                         "the sample). Click an object.")

    def open_upload(self, path: str | os.PathLike) -> tuple[Session, str]:
        image = read_upload(path, self.max_upload_bytes, self.max_pixels)
        session = Session(Path(path).name, image)
        if self.predictor.visible_segmenter is None:
            return session, (f"{session.name}: {image.shape[1]}x{image.shape[0]}. Now upload its "
                             "visible masks (instance-id PNG, one-object PNG or COCO JSON): no "
                             "visible-instance segmenter is loaded (segan demo "
                             "--visible-segmenter PATH finds them).")
        self._predict(session, None)
        return session, (f"{session.name}: the visible segmenter found {len(session.scene)} "
                         "objects. Click one.")

    def add_masks(self, session: Session | None, path: str | os.PathLike) -> tuple[Session, str]:
        if session is None:
            raise DemoInputError("pick a sample or upload an image first, then its masks")
        masks = read_mask_upload(path, session.image.shape[:2], session.name,
                                 self.max_upload_bytes)
        self._predict(session, masks)
        return session, f"{session.name}: {len(session.scene)} objects from {Path(path).name}. " \
                        "Click an object."

    def click(self, session: Session | None, x: float, y: float
              ) -> tuple[np.ndarray | None, np.ndarray | None, str]:
        if session is None or session.scene is None:
            return None, None, "Pick a sample or upload an image (and its masks) first."
        k = pick_object(session.scene, x, y)
        if k is None:
            return None, None, f"No object at ({int(x)}, {int(y)}): click on an object."
        session.chosen = k
        full, painted = object_pictures(session.image, session.scene, k)
        return full, painted, describe_object(session.scene, k)

    def remove(self, session: Session | None
               ) -> tuple[np.ndarray | None, np.ndarray | None, str]:
        """"Remove": the chosen object joins the removed ones; returns the scene without them
        (upscaled like the scene picture), the steps (`segan.deocclude.steps_picture`) and what
        happened."""
        if session is None or session.scene is None:
            return None, None, "Pick a sample or upload an image (and its masks) first."
        if session.chosen is None:
            return None, None, "Click an object first, then Remove."
        if session.chosen not in session.removed:
            session.removed = sorted([*session.removed, session.chosen])
        result = deocclude(session.image, session.scene, session.removed, fill=self.fill)
        s = session.scale
        edited = np.repeat(np.repeat(result.image, s, 0), s, 1)
        revealed = [k for k in result.order if result.revealed_masks[k].any()]
        plural = "s" if len(result.removed) > 1 else ""
        text = (f"**Removed object{plural} {', '.join(map(str, result.removed))}** "
                f"({int(result.hole.sum())} pixels). ")
        text += (f"Revealed, back to front: {', '.join(map(str, revealed))} (their painted "
                 "appearance); the rest of the hole is background." if revealed else
                 "It hid no object: the hole is background.")
        return edited, steps_picture(session.image, result), text

    def put_back(self, session: Session | None) -> tuple[None, None, str]:
        """"Put back": no object removed."""
        if session is not None:
            session.removed = []
        return None, None, "Nothing removed."

    def scene_outputs(self, session: Session) -> tuple[np.ndarray, np.ndarray | None, str]:
        """The scene picture (upscaled like the overlay, so both take clicks in one frame),
        the overlay and the occlusion order."""
        s = session.scale
        image = np.repeat(np.repeat(session.image, s, 0), s, 1)
        if session.scene is None:
            return image, None, ""
        return image, overlay(session.image, session.scene, s), describe_order(session.scene)


def build_demo(model: DemoModel) -> Any:
    """The Gradio page (gr.Blocks) around `model`."""
    _offline_env()
    import gradio as gr

    names = list(model.samples)
    with gr.Blocks(title="segan: segmenting and painting the invisible",
                   analytics_enabled=False) as demo:
        gr.Markdown("# segan: see the invisible\nPick a sample or upload an image, then "
                    "**click an object** to see its full (amodal) mask, its painted appearance "
                    "and its place in the scene's occlusion order; **Remove** takes it out of "
                    "the scene and shows what it hid.")
        state = gr.State(None)
        with gr.Row():
            sample = gr.Dropdown(names, value=names[0] if names else None, label="Sample image",
                                 elem_id="sample")
            upload = gr.File(label=f"…or upload an image (at most "
                             f"{model.max_upload_bytes / 2**20:.0f} MB)", elem_id="upload")
            masks = gr.File(label="Visible masks of the image (instance-id PNG, one-object PNG "
                            "or COCO JSON)", elem_id="masks")
        status = gr.Markdown(elem_id="status")
        pic: dict[str, Any] = dict(interactive=False, format="png",
                                   buttons=["download", "fullscreen"])  # no share button
        with gr.Row():
            scene_img = gr.Image(label="Scene: click an object", elem_id="scene", **pic)
            overlay_img = gr.Image(label="All objects: visible green, predicted hidden "
                                   "magenta, depth layer numbers", elem_id="overlay", **pic)
        with gr.Row():
            full_img = gr.Image(label="Chosen object: full mask", elem_id="full", **pic)
            painted_img = gr.Image(label="Chosen object: painted appearance",
                                   image_mode="RGBA", elem_id="painted", **pic)
            info = gr.Markdown(elem_id="info")
        with gr.Row():
            remove_btn = gr.Button("Remove the chosen object", elem_id="remove",
                                   variant="primary")
            put_back_btn = gr.Button("Put back", elem_id="put_back")
        with gr.Row():
            edited_img = gr.Image(label="Without the removed objects", elem_id="edited", **pic)
            steps_img = gr.Image(label="Steps: the hole, its background, each revealed object, "
                                 "the result", elem_id="steps", **pic)
        removal = gr.Markdown(elem_id="removal")
        order = gr.Markdown(elem_id="order")

        scene_outputs = [state, status, scene_img, overlay_img, order, full_img, painted_img,
                         info, edited_img, steps_img, removal]

        def show(result: tuple[Session, str] | None, error: str | None = None) -> list:
            if error is not None:
                return [gr.update(), f"⚠ {error}", *[gr.update()] * 9]
            session, message = result  # type: ignore[misc]
            image, ov, text = model.scene_outputs(session)
            return [session, message, image, ov, text, None, None, "", None, None, ""]

        def on_sample(name: str | None) -> list:
            if not name:
                return [gr.update()] * len(scene_outputs)
            try:
                return show(model.open_sample(name))
            except DemoInputError as e:
                return show(None, str(e))

        def on_upload(file: str | None) -> list:
            if file is None:
                return [gr.update()] * len(scene_outputs)
            try:
                return show(model.open_upload(file))
            except DemoInputError as e:
                return show(None, str(e))

        def on_masks(session: Session | None, file: str | None) -> list:
            if file is None:
                return [gr.update()] * len(scene_outputs)
            try:
                return show(model.add_masks(session, file))
            except DemoInputError as e:
                return show(None, str(e))

        def on_click(session: Session | None, evt: gr.SelectData) -> list:
            x, y = evt.index  # pixel of the displayed (upscaled) picture
            s = session.scale if session is not None else 1
            return list(model.click(session, (x + 0.5) / s, (y + 0.5) / s))

        on_click.__annotations__["evt"] = gr.SelectData  # a class, not the postponed string

        sample.change(on_sample, sample, scene_outputs)
        # each upload is consumed and its box emptied, so the next file can be dropped there
        upload.upload(lambda f: [*on_upload(f), None], upload, [*scene_outputs, upload])
        masks.upload(lambda st, f: [*on_masks(st, f), None], [state, masks],
                     [*scene_outputs, masks])
        scene_img.select(on_click, state, [full_img, painted_img, info])
        overlay_img.select(on_click, state, [full_img, painted_img, info])
        remove_btn.click(model.remove, state, [edited_img, steps_img, removal])
        put_back_btn.click(model.put_back, state, [edited_img, steps_img, removal])
        demo.load(on_sample, sample, scene_outputs)
    return demo


def launch_demo(checkpoint: str | os.PathLike | None, data: str | os.PathLike | None = None,
                split: str = "test", samples: int = 8,
                visible_segmenter: str | os.PathLike | None = None, device: str | None = None,
                host: str = "127.0.0.1", port: int = 7860, block: bool = True,
                completer: str | os.PathLike | None = None) -> Any:
    """Load the model (and samples from DATA's split), build the page and serve it.
    block=False returns the running gr.Blocks (close it with ``.close()``). checkpoint None:
    the package's bundled model (`SeganPredictor.pretrained`). completer: a background
    completer run for "Remove" (default: diffusion inpainting, `segan.deocclude.make_fill`)."""
    from segan.deocclude import make_fill

    fill = make_fill(None, completer, device)
    if checkpoint is None:
        predictor = SeganPredictor.pretrained(device, visible_segmenter)
    else:
        predictor = SeganPredictor.from_checkpoint(checkpoint, device=device,
                                                   visible_segmenter=visible_segmenter)
    sample_list = load_samples(data, split, samples) if data is not None else []
    demo = build_demo(DemoModel(predictor, sample_list, fill=fill))
    return serve(demo, host, port, block)


def serve(demo: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve a `build_demo` page locally: no share link, no SSR (no Node), uploads above
    SERVER_MAX_FILE_SIZE refused by Gradio itself."""
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                prevent_thread_lock=not block, max_file_size=SERVER_MAX_FILE_SIZE,
                ssr_mode=False, quiet=not block)
    return demo


__all__ = ["DemoInputError", "DemoModel", "Sample", "build_demo", "check_image",
           "launch_demo", "load_samples", "pick_object", "read_upload", "serve"]
