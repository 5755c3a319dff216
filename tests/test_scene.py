"""The procedural scene generator: determinism, layout plausibility, meshes, views, textures."""

from __future__ import annotations

import numpy as np
import pytest

from segan.scene import CATEGORIES, camera_ok, generate_scene, sample_view
from segan.scene import primitives as P
from segan.scene.rooms import overlaps
from segan.scene.sampling import light_role
from segan.scene.textures import PHOTO_POOLS, SURFACE_PHOTOS, available_photos, photo_crop

SHELL = {"floor", "wall", "ceiling", "window", "door"}
EPS = 2e-3


def _scene(kind: str, seed: int, **kw):
    return generate_scene(f"{kind}-{seed}", kind, np.random.default_rng(seed), seed=(seed,), **kw)


@pytest.fixture(scope="module")
def scenes():
    return [_scene(k, s) for k in ("living_room", "kitchen") for s in (0, 1, 2)]


def _part_boxes(obj) -> np.ndarray:
    out = []
    for p in obj.parts:
        v = p.vertices.astype(np.float64) @ obj.pose[:3, :3].T + obj.pose[:3, 3]
        out.append(np.stack([v.min(0), v.max(0)]))
    return np.stack(out)


def _same(a, b) -> bool:
    if a.room != b.room or len(a.objects) != len(b.objects) or a.lights != b.lights:
        return False
    for oa, ob in zip(a.objects, b.objects, strict=True):
        if (oa.instance_id, oa.category, oa.support_id) != (ob.instance_id, ob.category,
                                                            ob.support_id):
            return False
        if not np.array_equal(oa.pose, ob.pose) or len(oa.parts) != len(ob.parts):
            return False
        for pa, pb in zip(oa.parts, ob.parts, strict=True):
            if pa.material.name != pb.material.name:
                return False
            for x, y in ((pa.vertices, pb.vertices), (pa.faces, pb.faces), (pa.uvs, pb.uvs),
                         (pa.material.albedo, pb.material.albedo)):
                if not np.array_equal(x, y):
                    return False
    return True


def test_same_seed_same_scene_and_different_seed_differs():
    for kind in ("living_room", "kitchen"):
        a, b = _scene(kind, 7), _scene(kind, 7)
        assert _same(a, b)
        assert not _same(a, _scene(kind, 8))


def test_views_are_deterministic(scenes):
    s = scenes[0]
    va = sample_view(s, np.random.default_rng(3), 320, 240)
    vb = sample_view(s, np.random.default_rng(3), 320, 240)
    assert va == vb


def test_room_size_and_shell(scenes):
    for s in scenes:
        r = s.room
        assert 4.0 <= r.width <= 7.0 and 4.0 <= r.depth <= 7.0 and 2.6 <= r.height <= 3.0
        cats = {o.category for o in s.objects if not o.annotated}
        assert {"floor", "wall", "ceiling", "door", "window"} <= cats
        assert all(o.category in SHELL for o in s.objects if not o.annotated)
        assert sum(o.category == "wall" for o in s.objects) == 4


def test_ids_and_object_count(scenes):
    for s in scenes:
        ids = [o.instance_id for o in s.objects]
        assert len(set(ids)) == len(ids) and min(ids) >= 1
        ann = s.annotated_ids()
        assert ann == list(range(1, len(ann) + 1)), "annotated objects come first"
        assert 54 <= len(ann) <= 60
        assert all(o.category in CATEGORIES for o in s.objects if o.annotated)
    small = _scene("kitchen", 4, n_objects=20)
    assert 15 <= len(small.annotated_ids()) <= 20


def test_many_categories_and_room_typical_furniture(scenes):
    seen = {o.category for s in scenes for o in s.objects if o.annotated}
    assert len(seen) >= 25, sorted(seen)
    for s in scenes:
        cats = {o.category for o in s.objects if o.annotated}
        if s.room.kind == "living_room":
            assert {"sofa", "coffee_table", "tv", "book"} <= cats
        else:
            assert {"counter", "fridge", "stove"} <= cats


def assert_no_interpenetration(scene) -> None:
    """No two placed objects' part boxes overlap (beyond EPS), except an object and its
    support."""
    objs = [o for o in scene.objects if o.category not in ("floor", "wall", "ceiling")]
    boxes = [_part_boxes(o) for o in objs]
    for i, a in enumerate(objs):
        for j in range(i + 1, len(objs)):
            b = objs[j]
            if a.support_id == b.instance_id or b.support_id == a.instance_id:
                continue
            hit = overlaps(boxes[i], boxes[j], EPS)
            assert not hit.any(), f"{scene.scene_id}: {a.category} {a.instance_id} x " \
                                  f"{b.category} {b.instance_id}"


def test_no_interpenetration(scenes):
    for s in scenes:
        assert_no_interpenetration(s)


def test_objects_inside_room_and_resting_on_supports(scenes):
    for s in scenes:
        r = s.room
        top = np.array([r.width, r.depth, r.height])
        for o in s.objects:
            if not o.annotated:
                continue
            bb = o.world_aabb()
            assert np.all(bb[0] > -EPS) and np.all(bb[1] < top + EPS), (o.category, bb)
            if o.support_id is None:
                continue
            sup = s.object(o.support_id)
            assert sup.annotated
            sb = _part_boxes(sup)
            # resting: the bottom touches the top of a support part, or sits inside a bowl
            touching = np.abs(sb[:, 1, 2] - bb[0, 2]) < EPS
            inside = sup.category in ("bowl",) and bb[0, 2] > sup.world_aabb()[0, 2]
            assert touching.any() or inside, (o.category, sup.category)
        sills = np.concatenate([_part_boxes(o)[:, 1, 2] for o in s.objects
                                if o.category == "window"])
        for o in s.objects:
            if not o.annotated or o.support_id is not None:
                continue
            z = o.world_aabb()[0, 2]
            hung = o.category in ("picture_frame", "cabinet")  # on a wall
            assert hung or abs(z) < EPS or np.abs(sills - z).min() < EPS, o.category


def test_meshes_are_valid(scenes):
    for s in scenes:
        for o in s.objects:
            assert o.pose.shape == (4, 4) and np.isfinite(o.pose).all()
            for p in o.parts:
                v, f = p.vertices, p.faces
                assert v.dtype == np.float32 and f.dtype == np.int32
                assert len(f) > 0 and f.min() >= 0 and f.max() < len(v)
                assert np.isfinite(v).all() and np.isfinite(p.uvs).all()
                area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]),
                                      axis=1)
                assert area.min() > 0
                a = p.material.albedo
                assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3


def test_material_names_identify_textures(scenes):
    for s in scenes:
        by_name = {}
        for o in s.objects:
            for p in o.parts:
                m = p.material
                if m.name in by_name:
                    assert np.array_equal(by_name[m.name], m.albedo), m.name
                by_name[m.name] = m.albedo


def test_closed_primitives_face_outwards():
    for g in (P.box((0, 0, 0), (1, 2, 3)), P.cylinder(0.5, 1.0), P.sphere(1.0), P.torus(1, 0.2),
              P.superellipsoid((1, 1, 1)), P.extrude(P.rounded_rect(1, 2, 0.2), 0, 1),
              P.tube([(0, 0, 0), (0, 0, 1), (1, 0, 2)], 0.1)):
        v, f = g.vertices, g.faces
        volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
        assert volume > 0


def test_lights(scenes):
    for s in scenes:
        roles = [light_role(s, light) for light in s.lights]
        assert "ceiling" in roles
        n_windows = sum(o.category == "window" for o in s.objects)
        assert roles.count("window") == n_windows
        lamps = sum(o.category in ("floor_lamp", "table_lamp") for o in s.objects)
        assert roles.count("lamp") == lamps
        for light in s.lights:
            assert light.intensity > 0 and all(0 <= c <= 1 for c in light.color)


def test_views_at_head_height_looking_at_objects(scenes):
    rng = np.random.default_rng(0)
    for s in scenes:
        boxes = [o.world_aabb() for o in s.objects if o.annotated]
        for _ in range(5):
            v = sample_view(s, rng, 320, 240)
            c = v.camera
            pos = np.array(c.position)
            assert 1.4 <= pos[2] <= 1.9
            assert 0.3 <= pos[0] <= s.room.width - 0.3 and 0.3 <= pos[1] <= s.room.depth - 0.3
            assert camera_ok(s, pos)
            assert np.radians(55) - 1e-9 <= c.yfov <= np.radians(65) + 1e-9
            assert (c.width, c.height) == (320, 240)
            target = np.array(c.target)
            assert any(np.all(target > b[0] - 0.2) and np.all(target < b[1] + 0.2) for b in boxes)
            assert len(v.lights) > 0 and all(0 <= a <= 1 for a in v.ambient)


def test_train_and_test_pools_share_no_texture():
    train = _scene("living_room", 10, photo_pool="train")
    test = _scene("living_room", 11, photo_pool="test")
    names = [{p.material.name for o in s.objects for p in o.parts} for s in (train, test)]
    assert not names[0] & names[1]
    assert not any(":test:" in n for n in names[0])
    assert not any(":train:" in n for n in names[1])


@pytest.mark.skipif(not available_photos(SURFACE_PHOTOS), reason="scikit-image data missing")
def test_photo_crops_come_from_disjoint_halves():
    for pool in PHOTO_POOLS:
        for k in range(20):
            _, label = photo_crop("brick.png", pool, np.random.default_rng(k), 64, 0.6)
            x0, w = int(label.split(",")[0]), int(label.split(",")[2].split("x")[0])
            if pool == "train":
                assert x0 + w <= 256
            else:
                assert x0 >= 256
