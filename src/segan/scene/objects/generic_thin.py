"""Thin, branching and articulated generic families: rods joined at angles, the shapes whose
hidden parts cannot be guessed as a blob (a leg behind a box, the far end of a branch).

Measured on the bundled model (docs/results.md, session 22): of the held-out families, the thin
and articulated ones (``wrench``, ``toy_figure``) gained least over copying the visible mask.
These families give the ``train_plus`` content group (preset ``diverse_plus``) more of that kind
of shape without copying a held-out one: no open jaw, no humanoid figure.
"""

from __future__ import annotations

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.objects.generic import _handle_skin, any_skin, capped
from segan.scene.primitives import box_c, sphere, superellipsoid, torus, tube


def tripod(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Standing: three splayed legs meeting under a small head (a camera stand, a plant
    stand)."""
    h, spread = r.uniform(0.12, 0.35), r.uniform(0.25, 0.55)
    leg_r = h * r.uniform(0.015, 0.03)
    top = np.array([0.0, 0.0, h])
    legs = skin(kit.metal(), 8.0) if r.random() < 0.6 else _handle_skin(r, kit)
    b = Builder("tripod")
    start = r.uniform(0, 2 * np.pi)
    for k in range(3):
        a = start + 2 * np.pi * k / 3 + r.uniform(-0.2, 0.2)
        foot = np.array([spread * h * np.cos(a), spread * h * np.sin(a), 0.0])
        b.add(tube([foot, top], leg_r), legs)
    head = h * r.uniform(0.08, 0.16)
    b.add(superellipsoid((head * 1.6, head, head), 0.4).translated(top + (0, 0, head / 2)),
          any_skin(r, kit))
    return capped(b.model(), max_height)


def coat_hanger(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Lying flat: a thin triangle of wire or wood with a hook at its apex."""
    w, h = r.uniform(0.2, 0.42), r.uniform(0.07, 0.13)
    t = r.uniform(0.002, 0.005) if r.random() < 0.5 else r.uniform(0.005, 0.01)
    mat = skin(kit.metal(), 8.0) if t < 0.005 else _handle_skin(r, kit)
    left, right, apex = np.array([-w / 2, 0, t]), np.array([w / 2, 0, t]), np.array([0, h, t])
    b = Builder("coat_hanger")
    for p0, p1 in ((left, right), (left, apex), (right, apex)):
        b.add(tube([p0, p1], t), mat)
    hook = h * r.uniform(0.2, 0.3)
    b.add(tube([apex, apex + (0, hook, 0)], t), mat)
    b.add(torus(hook * 0.5, t, 12, 6, arc=np.pi).translated(apex + (-hook * 0.5, hook, 0)), mat)
    return capped(b.model(), max_height)


def branch(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Lying: a twig that forks two or three times, each fork thinner (a stick, a dry
    branch, a coral)."""
    length, rad = r.uniform(0.08, 0.2), r.uniform(0.004, 0.01)
    mat = skin(kit.wood(size=64), 8.0) if r.random() < 0.7 else any_skin(r, kit)
    b = Builder("branch")
    tips = [(np.array([0.0, 0.0, rad]), 0.0, length, rad)]  # (start, heading, length, radius)
    for _ in range(int(r.integers(2, 4))):
        grown = []
        for p0, heading, ln, rr in tips:
            p1 = p0 + ln * np.array([np.cos(heading), np.sin(heading), 0.0])
            b.add(tube([p0, p1], rr, 6), mat)
            for side in (-1, 1):
                if r.random() < 0.8:
                    grown.append((p1, heading + side * r.uniform(0.3, 0.9),
                                  ln * r.uniform(0.5, 0.75), rr * 0.7))
        tips = grown
        if not tips:
            break
    return capped(b.model(), max_height)


def key(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Lying flat: a ring bow, a shaft and a row of teeth of random depths (large: a toy key
    or a door key seen close up)."""
    s = r.uniform(0.05, 0.14)
    t = s * r.uniform(0.03, 0.06)
    mat = skin(kit.metal(), 8.0) if r.random() < 0.7 else skin(kit.plastic(kit.vivid_color()), 8)
    b = Builder("key")
    bow = s * r.uniform(0.18, 0.28)
    b.add(torus(bow, bow * 0.35, 16, 6).scaled((1, 1, t / (0.7 * bow))).translated(
        (-bow, 0, t / 2)), mat)
    shaft_w = s * r.uniform(0.08, 0.14)
    b.add(box_c((s / 2, 0, t / 2), (s, shaft_w, t)), mat)
    n = int(r.integers(2, 6))
    for k in range(n):
        depth = shaft_w * r.uniform(0.5, 1.4)
        x = s * (0.45 + 0.5 * (k + 0.5) / n)
        b.add(box_c((x, -shaft_w / 2 - depth / 2, t / 2), (s * 0.45 / n, depth, t)), mat)
    return capped(b.model(), max_height)


def stick_animal(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Standing on four thin legs: a long body, a neck and a head, a tail (a toy horse, a
    dog, a wooden animal); each part a primitive, proportions random."""
    s = r.uniform(0.06, 0.2)
    body_l, body_h = s * r.uniform(0.8, 1.4), s * r.uniform(0.25, 0.4)
    leg_h, leg_r = s * r.uniform(0.35, 0.7), s * r.uniform(0.03, 0.06)
    body_mat = any_skin(r, kit)
    limb_mat = body_mat if r.random() < 0.5 else any_skin(r, kit)
    b = Builder("stick_animal")
    z_body = leg_h + body_h / 2
    b.add(superellipsoid((body_l, body_h * r.uniform(0.7, 1.0), body_h), 0.6).translated(
        (0, 0, z_body)), body_mat)
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * body_l * 0.38, sy * body_h * 0.3
            foot = (x + r.uniform(-0.1, 0.1) * leg_h, y, 0.0)
            b.add(tube([foot, (x, y, z_body)], leg_r, 6), limb_mat)
    neck_top = np.array([body_l * 0.5 + s * r.uniform(0.1, 0.25), 0, z_body + s * r.uniform(
        0.2, 0.45)])
    b.add(tube([(body_l * 0.42, 0, z_body), neck_top], leg_r * 1.4, 6), limb_mat)
    b.add(sphere(s * r.uniform(0.1, 0.16), 12, 8).translated(neck_top), body_mat)
    tail = np.array([-body_l * 0.5 - s * r.uniform(0.1, 0.3), 0, z_body + s * r.uniform(
        -0.2, 0.2)])
    b.add(tube([(-body_l * 0.48, 0, z_body), tail], leg_r * 0.7, 6), limb_mat)
    return capped(b.model(), max_height)


THIN_BUILDERS = {"tripod": tripod, "coat_hanger": coat_hanger, "branch": branch, "key": key,
                 "stick_animal": stick_animal}

__all__ = ["THIN_BUILDERS"]
