"""SeGAN's losses (paper section 3, Eq. 2-6; weights from section 5.1).

All functions take the networks' LOGITS where a sigmoid follows (mask head, discriminator) and
use binary_cross_entropy_with_logits: the same BCE as on the sigmoid output, computed stably.
Losses are computed in fp32 whatever the autocast dtype.

Segmentation pixel sets. The 58x58 ground truth is resized bilinearly (section 5.1), so S_F and
S_V are soft in [0, 1]. The sets of Eq. 3 are taken by thresholding at 0.5:
    S_V  = {S_V >= 0.5}                   (visible)
    S_I  = {S_F >= 0.5} minus S_V         (invisible)
    bg   = everything else, the complement of S_F (and of S_V, should a thresholded S_V pixel
           fall outside the thresholded S_F)
so the three partition the patch. The BCE target g is the soft S_F value by default (the paper
keeps soft masks); `binarize_target=True` uses {S_F >= 0.5}, as the reference code does.

Batches: each loss is the per-object (or per-sample) loss averaged over objects, which equals the
paper's batch-size-1 training for any batch size.
"""

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """The lambdas of Eq. 3, 5 and 6 (section 5.1), and the reference code's L1 normalisers."""

    lambda_bg: float = 1.0  # Eq. 3, background (complement of S_F)
    lambda_sv: float = 5.0  # Eq. 3, visible region S_V
    lambda_si: float = 3.0  # Eq. 3, invisible region S_I
    lambda_l1: float = 100.0  # Eq. 5
    lambda_star: float = 0.1  # Eq. 6, weight of the painter loss L*
    # reference code's region-weighted L1 (segmentation_loss kind="l1"): (bg, S_V, S_I) divisors
    l1_normalisers: tuple[float, float, float] = (0.025, 0.01, 0.03)


def segmentation_regions(
    full_mask_gt: torch.Tensor, visible_mask_gt: torch.Tensor, threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean (bg, S_V, S_I) pixel sets of Eq. 3 from soft ground truth (module docstring)."""
    full = full_mask_gt >= threshold
    visible = visible_mask_gt >= threshold
    invisible = full & ~visible
    background = ~full & ~visible
    return background, visible, invisible


def _per_object_mean(values: torch.Tensor, subset: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over `subset` for each leading index; 0 where the subset is empty."""
    subset = subset.to(values.dtype)
    total = (values * subset).flatten(1).sum(1)
    count = subset.flatten(1).sum(1)
    return total / count.clamp(min=1)  # an empty set has total 0, so it contributes 0


def masked_bce(
    logits: torch.Tensor,
    target: torch.Tensor,
    subset: torch.Tensor,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """Eq. 2: L_ent^S(g, o) = -1/|S| sum_{ij in S} g_ij log o_ij + (1 - g_ij) log(1 - o_ij).

    o = sigmoid(logits). All (K, ...) of one shape; subset boolean. Per object, mean over its S
    (0 for an empty S); reduction "mean" averages over the K objects, "none" returns (K,).
    """
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    per_object = _per_object_mean(bce, subset)
    return per_object.mean() if reduction == "mean" else per_object


def region_weighted_l1(
    probs: torch.Tensor,
    target: torch.Tensor,
    regions: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    weights: tuple[float, float, float],
    normalisers: tuple[float, float, float],
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """The reference code's segmentation loss: sum_r (w_r / n_r) * mean_all(|o - g| * 1[r]).

    Unlike Eq. 2 the mean runs over ALL pixels of the patch (the code zeroes the other regions
    and averages), and the divisors n_r (about each region's typical share) rebalance it.
    """
    error = (probs.float() - target.float()).abs().flatten(1)
    loss = error.new_zeros(error.shape[0])
    for region, w, n in zip(regions, weights, normalisers, strict=True):
        loss = loss + (w / n) * (error * region.flatten(1).to(error.dtype)).mean(1)
    return loss.mean() if reduction == "mean" else loss


def segmentation_loss(
    mask_logits: torch.Tensor,
    full_mask_gt: torch.Tensor,
    visible_mask_gt: torch.Tensor,
    weights: LossWeights = LossWeights(),
    kind: Literal["bce", "l1"] = "bce",
    threshold: float = 0.5,
    binarize_target: bool = False,
    candidate: torch.Tensor | None = None,
    gate_loss: Literal["pixels", "regions"] = "regions",
) -> torch.Tensor:
    """Eq. 3: L_segm = λ_bg L_ent^{bg} + λ_SV L_ent^{S_V} + λ_SI L_ent^{S_I}.

    Args:
        mask_logits: (K, 1, m, m) segmentor output (before the sigmoid).
        full_mask_gt, visible_mask_gt: (K, 1, m, m) S_F and S_V cropped to the same boxes, soft.
        kind: "bce" (paper, Eq. 2-3) or "l1" (reference code, `region_weighted_l1`).
        threshold: defines the pixel sets (and the target when binarize_target).
        candidate: (K, 1, m, m) C of SeGAN's `occluder_gate` (not in the paper), the other
            objects' visible pixels over the box. The gate decides every pixel outside C (S_V
            is in S_F, the rest is not), so only C ∪ S_I is judged.
        gate_loss: with `candidate`, "regions": Eq. 3's per-region means over bg ∩ C and
            S_I (no S_V term), which with λ_SI = 3 > λ_bg = 1 claims a pixel of C from
            P(S_I) > 1/4 on, more for objects whose S_I is small; "pixels": ONE region,
            λ_SI L_ent^{C ∪ S_I}, which keeps o calibrated. On the CPU toy A/B (docs/results.md)
            "regions" finds more of the hidden parts and orders better, at equal full IoU.
    """
    regions = segmentation_regions(full_mask_gt, visible_mask_gt, threshold)
    target = (full_mask_gt >= threshold).float() if binarize_target else full_mask_gt.float()
    if candidate is not None:
        if kind != "bce":
            raise ValueError("the occluder gate's loss is BCE (kind='bce')")
        background, visible, invisible = regions
        in_c = candidate >= threshold
        if gate_loss == "pixels":
            return weights.lambda_si * masked_bce(mask_logits, target, in_c | invisible)
        if gate_loss != "regions":
            raise ValueError(f"gate_loss must be 'pixels' or 'regions', got {gate_loss!r}")
        regions = (background & in_c, torch.zeros_like(visible), invisible)
    lambdas = (weights.lambda_bg, weights.lambda_sv, weights.lambda_si)
    if kind == "l1":
        return region_weighted_l1(torch.sigmoid(mask_logits.float()), target, regions, lambdas,
                                  weights.l1_normalisers)
    if kind != "bce":
        raise ValueError(f"kind must be 'bce' or 'l1', got {kind!r}")
    return sum(lam * masked_bce(mask_logits, target, region)
               for lam, region in zip(lambdas, regions, strict=True))


def soft_iou_loss(probs: torch.Tensor, target: torch.Tensor,
                  reduction: Literal["mean", "none"] = "mean") -> torch.Tensor:
    """1 - soft IoU (Jaccard) of o and S_F per object: 1 - sum(o g) / sum(o + g - o g).

    Not in the paper (``loss.lambda_iou``). The evaluation scores each object's IoU, with
    every object counting alike; Eq. 3's per-region means weigh a hidden pixel alike whatever
    the size of the object's mask. This is that IoU with o in place of the thresholded mask.
    probs and target (K, 1, m, m) in [0, 1] (o after any gate: the mask that is scored); 0 for
    an object whose o and S_F are both empty.
    """
    p, g = probs.float().flatten(1), target.float().flatten(1)
    inter = (p * g).sum(1)
    union = p.sum(1) + g.sum(1) - inter
    per_object = torch.where(union > 0, 1 - inter / union.clamp(min=1e-6), 0.0)
    return per_object.mean() if reduction == "mean" else per_object


def distillation_loss(probs: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """BCE of the student's o against the teachers' mean o (``loss.lambda_distill``, not in
    the paper), both (K, 1, m, m) in [0, 1] after the occluder gate, averaged over pixels and
    objects; float32, the student's o clamped to [1e-6, 1 - 1e-6] and the target to [0, 1]:
    the gate's o' = V + (1 - V) C o left [0, 1] on CUDA (the first GPU run, session 35,
    stopped at step 0 on BCE's range assert, in fp32 too; V is S_V resampled by roi_align)."""
    p = probs.float().clamp(1e-6, 1 - 1e-6)
    target = teacher_probs.float().detach().clamp(0, 1)
    with torch.autocast(p.device.type, enabled=False):  # BCE on probabilities: fp32 only
        return F.binary_cross_entropy(p, target)


def amodal_box_loss(deltas: torch.Tensor, boxes: torch.Tensor, amodal: torch.Tensor,
                    beta: float = 0.1) -> torch.Tensor:
    """The amodal-box head's loss (``model.amodal_box_head``, not in the paper): smooth L1
    (`beta`) between its (K, 4) deltas and each side's offset from the (K, 4) x1, y1, x2, y2
    input boxes to the amodal boxes, in box units (IBBE's target, `encode_box_deltas`),
    averaged over sides and objects."""
    from segan.models.baselines import encode_box_deltas

    return F.smooth_l1_loss(deltas.float(), encode_box_deltas(boxes.float(), amodal.float()),
                            beta=beta)


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """Eq. 4, D's side: D maximises E[log D(x, y)] + E[log(1 - D(x, G(x, z)))]; this returns the
    negative, -log D(real) - log(1 - D(fake)), averaged over patches and samples.

    Pass the fake logits of a DETACHED G output. scale=0.5 is pytorch-pix2pix's halving of D's
    loss (the paper and the Lua code use 1).
    """
    real = F.binary_cross_entropy_with_logits(real_logits.float(), torch.ones_like(real_logits,
                                              dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.zeros_like(fake_logits,
                                              dtype=torch.float32))
    return scale * (real + fake)


def generator_gan_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """Eq. 4, G's side. G minimises E[log(1 - D(x, G(x, z)))] (saturating=True, as written);
    the default is the non-saturating -E[log D(x, G(x, z))] that pix2pix and the reference code
    train with (same fixed point, useful gradients while D wins).
    """
    logits = fake_logits.float()
    if saturating:
        return -F.softplus(logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def painter_loss(
    fake_logits: torch.Tensor,
    painted: torch.Tensor,
    target: torch.Tensor,
    weights: LossWeights = LossWeights(),
    saturating: bool = False,
) -> torch.Tensor:
    """Eq. 5: L*(G) = L_cGAN(G, D) + λ_L1 L1(G), L1 = mean |y - G(x, z)| over pixels.

    fake_logits: D(M, painted) with D's parameters not being updated by this loss.
    painted, target: (K, 3, S, S) in the generator's output range [-1, 1].
    """
    l1 = (painted.float() - target.float()).abs().mean()
    return generator_gan_loss(fake_logits, saturating) + weights.lambda_l1 * l1


def full_loss(
    l_star: torch.Tensor, l_segm: torch.Tensor, weights: LossWeights = LossWeights()
) -> torch.Tensor:
    """Eq. 6: L_full = λ_L* L*(G) + L_segm(g, o), the end-to-end objective of G and segmentor."""
    return weights.lambda_star * l_star + l_segm


def context_encoder_loss(
    painted: torch.Tensor,
    target: torch.Tensor,
    fake_logits: torch.Tensor,
    lambda_rec: float = 0.999,
    lambda_adv: float = 0.001,
) -> torch.Tensor:
    """Context Encoder's generator loss (Pathak et al. 2016, Eq. 3): λ_rec L_rec + λ_adv L_adv,
    L_rec = mean (y - G(x))^2 over the crop's pixels and channels, L_adv = -log D(G(x))
    (non-saturating, as their code trains). fake_logits: D's logits of the painted crop with
    D's parameters not being updated by this loss."""
    l_rec = (painted.float() - target.float()).pow(2).mean()
    return lambda_rec * l_rec + lambda_adv * generator_gan_loss(fake_logits)


def box_regression_loss(
    deltas: list[torch.Tensor], boxes: list[torch.Tensor], target_box: torch.Tensor,
    beta: float = 0.1,
) -> torch.Tensor:
    """IBBE's box loss: for every step t, smooth L1 (`beta`) between the predicted corrections
    d_t and the offsets from the box b_{t-1} it saw to the amodal box (both per side, in units
    of b_{t-1}'s width/height), averaged over sides, objects and steps: `amodal_box_loss` of
    each step, averaged."""
    losses = [amodal_box_loss(d, b, target_box, beta)
              for d, b in zip(deltas, boxes, strict=False)]
    return torch.stack(losses).mean()
# ----------------------------------------------------------------------------- baselines


def scale_invariant_log_loss(
    log_depth_pred: torch.Tensor, depth_gt: torch.Tensor, lam: float = 0.5
) -> torch.Tensor:
    """Scale-invariant log error of Eigen, Puhrsch and Fergus (NIPS 2014), Eq. 4: with
    d_i = log y_i - log y*_i over the n valid pixels of an image,

        L = (1/n) sum_i d_i^2 - (lam / n^2) (sum_i d_i)^2,

    averaged over images (lam = 0.5 in their training; lam = 1 is fully scale invariant).
    The depth-layering baseline of Table 5 (single-image depth, the paper's [10]).

    log_depth_pred: (B, 1, H, W) predicted log depth (log metres); depth_gt: (B, 1, H, W)
    depth in metres, 0 where there is no surface (ignored). An image without valid pixels adds 0.
    """
    valid = depth_gt > 0
    d = torch.where(valid, log_depth_pred.float() - torch.log(depth_gt.float().clamp_min(1e-6)),
                    torch.zeros((), device=depth_gt.device))
    n = valid.flatten(1).sum(1).float()
    s1, s2 = d.flatten(1).sum(1), d.square().flatten(1).sum(1)
    per_image = s2 / n.clamp_min(1) - lam * s1.square() / n.clamp_min(1).square()
    return torch.where(n > 0, per_image, torch.zeros_like(per_image)).mean()


def l1_log_loss(log_depth_pred: torch.Tensor, depth_gt: torch.Tensor) -> torch.Tensor:
    """Mean |log y - log y*| over the valid (depth > 0) pixels of the batch (0 if none)."""
    valid = depth_gt > 0
    d = (log_depth_pred.float() - torch.log(depth_gt.float().clamp_min(1e-6))).abs()
    return (d * valid).sum() / valid.sum().clamp_min(1)
