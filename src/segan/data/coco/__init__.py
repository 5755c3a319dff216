"""The one reader and writer of the amodal dataset format (segan-coco v1, see FORMAT.md).

A split is a COCO instance JSON file whose annotations carry the amodal fields of COCOA-cls,
D2SA and UOAIS:

- ``segmentation``: the FULL (amodal) mask S_F, compressed RLE with ``counts`` as str;
- ``visible_mask``: S_V, the pixels where the object is seen; ``invisible_mask``: S_I = S_F \\ S_V;
- ``bbox``/``area`` of S_F, ``visible_bbox`` of S_V, ``occlude_rate`` = |S_I| / |S_F|.

Masks in memory are ``bool`` arrays of shape (H, W), row-major, row 0 at the top. Boxes are
COCO ``[x, y, w, h]`` in pixels. Everything pixel-level goes through pycocotools so that COCO
tools read our files unchanged.

The reader also accepts the field names of other amodal datasets (``occluded_rate``, KINS
``inmodal_seg``/``inmodal_bbox``, KINS2020 ``a_segm``/``i_segm``/``a_bbox``/``i_bbox``/
``a_area``, UOAIS ``occluded_mask``) and polygons wherever RLE is allowed; it hands out
annotations under the canonical names with every mask as compressed RLE.

Modules, each using only those above it:

- `spec`: the format's name and version, field names and aliases, tolerances,
  `DatasetFormatError`;
- `paths`: file names that must stay inside the dataset;
- `masks`: RLE encoding and decoding, boxes, areas, checks of RLE count strings;
- `mask_checks`: the mask-level invariants of one parsed split, on RLEs in bulk (`MaskChecks`);
- `validator`: every invariant of one parsed split (`Validator`: the records, then
  `MaskChecks`);
- `reader`: `load_annotations` -> `AmodalDataset`, and the files its records name;
- `writer`: records from masks, split files written atomically after validation.
"""

from .masks import decode_mask, decode_masks, encode_mask, mask_bbox, rle_areas, to_rle
from .paths import PATH_FIELDS, contained, path_problem, safe_relative
from .reader import AmodalDataset, image_rgb, load_annotations, read_json
from .spec import (
    ANNOTATION_ALIASES,
    FORMAT_NAME,
    FORMAT_VERSION,
    MASK_FIELDS,
    MIN_VISIBLE_PIXELS,
    DatasetFormatError,
)
from .writer import (
    encode_annotations,
    make_annotation,
    make_image,
    write_annotations,
    write_json_atomic,
)

__all__ = [
    "ANNOTATION_ALIASES", "FORMAT_NAME", "FORMAT_VERSION", "MASK_FIELDS", "MIN_VISIBLE_PIXELS",
    "PATH_FIELDS", "AmodalDataset", "DatasetFormatError", "contained", "decode_mask",
    "decode_masks", "encode_annotations", "encode_mask", "image_rgb", "load_annotations",
    "make_annotation", "make_image", "mask_bbox", "path_problem", "read_json", "rle_areas",
    "safe_relative", "to_rle", "write_annotations", "write_json_atomic",
]
