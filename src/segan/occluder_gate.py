"""SeGAN's occluder gate in the image frame (`model.occluder_gate`): where a hidden part may lie
(under another given object's visible pixels), which of two objects claiming each other's
visible pixels is in front (`one_way`), and that a hidden part continues the visible one
(`drop_detached_hidden`). The predictor's and the evaluation's forward (`segan.inference.
run_segan`) apply it after pasting S_F back to the image frame, with exact edges."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from segan.prediction import MASK_THRESHOLD

# Two objects whose predicted S_F each reach this probability somewhere on the other's S_V
# both stay hidden behind each other (mutual occlusion: a cup's handle over a plate whose rim
# hides the cup's foot); measured on the bundle in session 26 (docs/results.md).
MUTUAL_PEAK = 0.98


def gate_full_probs(full_probs: torch.Tensor, visible: torch.Tensor, one_way: bool = True
                    ) -> torch.Tensor:
    """SeGAN's `occluder_gate` in the image frame: 1 on S_V, the prediction where the image's
    other objects are visible (U - S_V), 0 elsewhere; then with `one_way`, of two objects that
    claim each other's visible pixels only the surer claim stays: p hides behind q or q behind
    p (section 5.2's pairs are one-way), unless both are sure somewhere (`MUTUAL_PEAK`); last,
    hidden pieces that do not touch the object's S_V go (`drop_detached_hidden`).
    full_probs (N, H, W) float, visible (N, H, W) bool."""
    visible = visible.to(full_probs.device, torch.bool)
    others = visible.any(0, keepdim=True) & ~visible
    probs = full_probs * others
    n = len(probs)
    if one_way and n > 1:
        v = visible.reshape(n, -1).to(probs.dtype)
        flat = probs.reshape(n, -1)
        # claims[p, q]: p's probability over S_V_q inside p's box (where the pasted o is > 0),
        # counting only the pixels p claims (>= 0.5): a mean, so sizes do not decide, and of
        # claimed pixels, so a wide cloud of unsure probability does not outweigh a sure claim
        seen = (full_probs.reshape(n, -1) > 0).to(probs.dtype) @ v.T
        sure = flat * (flat >= MASK_THRESHOLD)
        claims = (sure @ v.T) / seen.clamp(min=1)
        lose = claims < claims.T  # p's claim on q is the weaker of the two
        if lose.any():
            lose &= ~mutual_claims(flat, visible.reshape(n, -1))
        # pixels of the lost claims: each pixel is visible in at most one object (disjoint S_V)
        dropped = (lose.to(probs.dtype) @ v).reshape(probs.shape) > 0
        probs = probs.masked_fill(dropped, 0.0)
    return drop_detached_hidden(torch.where(visible, torch.ones_like(full_probs), probs), visible)


def mutual_claims(probs: torch.Tensor, visible: torch.Tensor,
                  peak: float = MUTUAL_PEAK) -> torch.Tensor:
    """(N, N) bool, [p, q]: p's and q's probabilities (N, P) each reach `peak` somewhere on the
    other's S_V (visible (N, P) bool)."""
    n = len(probs)
    top = probs.new_zeros(n, n)  # [p, q]: p's highest probability on S_V_q
    for q in range(n):
        on_q = probs[:, visible[q]]
        if on_q.shape[1]:
            top[:, q] = on_q.amax(1)
    sure = top >= peak
    return sure & sure.T


def drop_detached_hidden(full_probs: torch.Tensor, visible: torch.Tensor,
                         threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """The gate's second rule: an object's hidden part continues its visible part, so a piece
    of S_I (pixels >= threshold outside S_V, 8-connected) that touches no pixel of S_V (nor
    its 8 neighbours) is dropped (probability 0). Measured on the bundled model (ground-truth
    S_V, mean over instances): +0.3 full / +0.2 invisible IoU in-domain, +0.2 / +0.2 on the
    Mitsuba set (docs/results.md). full_probs (N, H, W) float, visible (N, H, W) bool.
    On the CPU the pieces are labelled by scipy on each object's crop; on a GPU they are found
    there (`attached_hidden`), so the prediction stays on the device."""
    visible = visible.to(full_probs.device, torch.bool)
    hidden_t = (full_probs >= threshold) & ~visible
    if full_probs.device.type != "cpu":
        return full_probs.masked_fill(hidden_t & ~attached_hidden(hidden_t, visible), 0.0)
    from scipy import ndimage

    has = torch.nonzero(hidden_t.flatten(1).any(1)).flatten().tolist()
    if not has:
        return full_probs
    hidden, vis = hidden_t[has].cpu().numpy(), visible[has].cpu().numpy()
    H, W = hidden.shape[1:]
    eight = np.ones((3, 3), bool)
    out = full_probs
    for i, k in enumerate(has):
        ys, xs = np.nonzero(hidden[i])
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        h = hidden[i, y0:y1, x0:x1]
        # S_V and its 8 neighbours over the crop (one pixel of margin for the neighbours)
        py0, py1, px0, px1 = max(y0 - 1, 0), min(y1 + 1, H), max(x0 - 1, 0), min(x1 + 1, W)
        near = ndimage.binary_dilation(vis[i, py0:py1, px0:px1], eight)
        near = near[y0 - py0:y0 - py0 + h.shape[0], x0 - px0:x0 - px0 + h.shape[1]]
        labels, n = ndimage.label(h, structure=eight)
        touching = np.unique(labels[h & near])
        if len(touching) == n:  # every piece touches S_V (label 0 is never under h)
            continue
        drop = h & ~np.isin(labels, touching)
        if out is full_probs:
            out = full_probs.clone()
        region = out[k, y0:y1, x0:x1]
        out[k, y0:y1, x0:x1] = region.masked_fill(torch.from_numpy(drop).to(region.device), 0.0)
    return out


def attached_hidden(hidden: torch.Tensor, visible: torch.Tensor, check_every: int = 32
                    ) -> torch.Tensor:
    """The pixels of `hidden` whose 8-connected piece touches `visible` or its 8 neighbours:
    the geodesic reconstruction of hidden n dilate(visible) inside hidden (3 x 3 max-pool,
    masked), to a fixed point; one host synchronisation per `check_every` steps. The same
    pieces as scipy's labelling in `drop_detached_hidden`, but in tensor operations: for the
    GPU (on the CPU the labelling is much faster). hidden, visible: (N, H, W) bool.
    The steps run on a window per object that holds its hidden pixels (`_hidden_windows`, one
    more synchronisation): a hidden part is a few per cent of the frame, so each step moves
    that much less memory (the bundled model needs a median of 17.5 steps)."""
    windows = _hidden_windows(hidden)
    if windows is None:  # nothing hidden
        return hidden.clone()
    k, ys, xs = windows
    near = F.max_pool2d(visible[:, None].to(torch.float32), 3, 1, 1)[:, 0] > 0
    m = hidden[k, ys, xs][:, None].to(torch.float32)  # (N, 1, h, w)
    x = near[k, ys, xs][:, None].to(torch.float32) * m  # the seeds: hidden pixels next to S_V
    while True:
        before = x
        for _ in range(check_every):
            x = F.max_pool2d(x, 3, 1, 1) * m
        if torch.equal(x, before):  # x only grows: unchanged over a round is the fixed point
            out = torch.zeros_like(hidden)
            out[k, ys, xs] = x[:, 0] > 0
            return out


def _hidden_windows(hidden: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Index tensors (k (N, 1, 1), ys (N, h, 1), xs (N, 1, w)) of one h x w window per object
    inside the frame that holds all of its hidden pixels (h, w: the largest bounding box); a
    window ends at the frame's edge, never past it, so no pixel appears twice and the 3 x 3
    steps see the frame's own neighbours (pixels outside a window are not hidden: a piece
    never leaves it). None when no object has a hidden pixel."""
    (N, H, W), dev = hidden.shape, hidden.device
    rows, cols = hidden.any(2), hidden.any(1)  # (N, H), (N, W)
    has = rows.any(1)
    starts, ends = [], []
    for occupied, size in ((rows, H), (cols, W)):
        first = occupied.to(torch.uint8).argmax(1)
        last = size - occupied.flip(1).to(torch.uint8).argmax(1)
        starts.append(torch.where(has, first, 0))
        ends.append(torch.where(has, last, 0))
    h, w = torch.stack([(e - s).max() for s, e in zip(starts, ends, strict=True)]).tolist()
    if h == 0:
        return None
    y0 = torch.minimum(starts[0], torch.tensor(H - h, device=dev))
    x0 = torch.minimum(starts[1], torch.tensor(W - w, device=dev))
    ys = (y0[:, None] + torch.arange(h, device=dev))[:, :, None]
    xs = (x0[:, None] + torch.arange(w, device=dev))[:, None, :]
    return torch.arange(N, device=dev)[:, None, None], ys, xs
