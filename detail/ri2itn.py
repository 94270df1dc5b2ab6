"""RI2ITN: the Recurrent Image-to-image Translation Network (paper Sec. 3.3).

The base is Chen et al. 2020's UV encoder-decoder (cyj907/unsupervised-detail-
layer, face_model.py, `FineModel.generator`): a 3x3 stride-1 convolution to 16
channels, then one 3x3 stride-2 convolution per scale (32, 64, 128, 256, 512,
512, 512, 512, 512 channels: nine at 512^2 input, down to 1x1), and as many 3x3
stride-2 transposed convolutions back up; every decoder activation is ReLU'd and
*added* to the encoder activation of the same scale (Eq. 8). No normalisation.

RI2ITN unrolls this network `num_passes` (= t) times. From the second pass on,
each encoder scale receives, added to its activation, the previous pass's
decoder feature at that scale plus every shallower (higher-resolution) decoder
feature of the previous pass brought down to that scale by (i - j) consecutive
3x3 stride-2 convolutions with ReLU: the Dense Feedback Connections (Eq. 6-7).
Every pass ends in a 3x3 transposed convolution to one channel (Eq. 9) and the
displacement map is tanh of a 1x1 convolution over all passes' outputs (Eq. 10).

Index convention. The paper numbers the decoder outputs f_1 ... f_9 (f_1 at full
resolution) and f_0 = the one-channel output. Here scale s = 0 ... L-1 is the
resolution after s stride-2 convolutions, so paper index i = s + 1; x_s is the
encoder activation at scale s (x_0 = ReLU(3x3 stride-1 conv of the input)), and
the bottleneck x_L (1x1 at 512^2) has no decoder feature of its own and so
receives no feedback (Eq. 6 is defined on decoder outputs only). Eq. 7 as
printed adds D_ense(f_{i-1}) to x_i, but f_{i-1} has twice the resolution of
x_i (Eq. 8 adds x_i to f_i); following the text ("add them ... to the
corresponding scale feature maps of the encoder") each encoder activation
receives the feedback of its own scale.

Feedback chains. Eq. 6 applies C_onv^{i-j} to f_j for every target scale i;
the paper does not say whether the convolutions that bring f_j down are
shared between targets. feedback_chains='per_pair' (default, the reading
kept from before) gives every (i, j) pair its own chain of (i - j)
convolutions: 125.5 M of RI2ITN's 147.5 M parameters at 512^2 (t = 2) are
feedback. feedback_chains='per_source' gives every source scale j ONE chain
of stride-2 convolutions down to the deepest decoder scale, and target i
reads it after (i - j) steps: the same receptive field and widths, one
convolution per (source, scale) instead of per (source, target, scale).

Weight sharing. By default this is a *recursive* network: all passes share the
encoder, decoder and Eq. 9 output weights, and all passes t >= 2 share the
feedback convolutions. `share_weights=False` gives every pass its own encoder,
decoder, output and feedback weights (the paper's notation E_i^t, D_i^t allows
both readings).
"""

import math

import keras
import tensorflow as tf

# Chen20 face_model.py FineModel.generator: conv0 width and conv1..conv9 widths.
CHEN20_STEM_CHANNELS = 16
CHEN20_CHANNELS = (32, 64, 128, 256, 512, 512, 512, 512, 512)


def _conv(filters, strides, name, kernel_size=3):
  return keras.layers.Conv2D(filters,
                             kernel_size,
                             strides=strides,
                             padding='same',
                             name=name)


def _deconv(filters, strides, name):
  return keras.layers.Conv2DTranspose(filters,
                                      3,
                                      strides=strides,
                                      padding='same',
                                      name=name)


def _track_as_attributes(owner, prefix, layers):
  """Also stores list items as attributes: tf.train.Checkpoint sees a Keras 3
  layer's attribute sub-layers but not the items of its Python lists."""
  for k, layer in enumerate(layers):
    setattr(owner, '%s%d' % (prefix, k), layer)


class UVEncoderDecoder(keras.layers.Layer):
  """One pass of Chen20's UV encoder-decoder with optional feedback inputs.

  call(inputs [B,S,S,C], feedback=None) -> (f0 [B,S,S,1], features)
    feedback: None (first pass, Eq. 6 case t = 1) or a list of L tensors, the
      Dense Feedback term D_ense for encoder scales 0..L-1, each
      [B, S/2^s, S/2^s, channels(s)].
    features: list of the L decoder features f (scale 0..L-1), Eq. 8.
    f0: the pre-fusion single-channel map of Eq. 9 (no activation).
  """

  def __init__(self, channels, stem_channels=CHEN20_STEM_CHANNELS, **kwargs):
    super().__init__(**kwargs)
    self.channels = tuple(int(c) for c in channels)
    self.stem_channels = int(stem_channels)
    self.num_levels = len(self.channels)
    # widths[s] = channels of x_s and of decoder feature f at scale s.
    self.widths = (self.stem_channels,) + self.channels
    self.stem = _conv(self.stem_channels, 1, 'conv0')
    self.encoder = [
        _conv(c, 2, 'conv%d' % (s + 1)) for s, c in enumerate(self.channels)
    ]
    # decoder[s] maps scale s+1 -> scale s, output width widths[s].
    self.decoder = [
        _deconv(self.widths[s], 2, 'deconv%d' % (s + 1))
        for s in range(self.num_levels)
    ]
    self.output_deconv = _deconv(1, 1, 'deconv0')  # Eq. 9
    _track_as_attributes(self, 'encoder_', self.encoder)
    _track_as_attributes(self, 'decoder_', self.decoder)

  def encode(self, inputs, feedback=None):
    """Encoder activations x_0 ... x_L (Eq. 7), a list of L + 1 tensors.

    x_s = ReLU(E_s(x_{s-1})) + D_ense(f^{t-1})_s for s < L (feedback entry
    s added at scale s); the bottleneck x_L receives none.
    """
    if feedback is not None and len(feedback) != self.num_levels:
      raise ValueError(
          'UVEncoderDecoder: feedback must have %d entries, got %d' %
          (self.num_levels, len(feedback)))
    x = tf.nn.relu(self.stem(inputs))
    if feedback is not None:
      x = x + feedback[0]
    skips = [x]
    for s, conv in enumerate(self.encoder):
      x = tf.nn.relu(conv(x))
      if feedback is not None and s + 1 < self.num_levels:
        x = x + feedback[s + 1]
      skips.append(x)
    return skips

  def decode(self, skips):
    """(f0, features) from the encoder activations (Eq. 8-9)."""
    # Decoder, Eq. 8: f_s = ReLU(Deconv(f_{s+1})) + x_s; f_L = x_L.
    f = skips[-1]
    features = [None] * self.num_levels
    for s in reversed(range(self.num_levels)):
      f = tf.nn.relu(self.decoder[s](f)) + skips[s]
      features[s] = f
    f0 = self.output_deconv(f)  # Eq. 9
    return f0, features

  def call(self, inputs, feedback=None):
    return self.decode(self.encode(inputs, feedback))


FEEDBACK_CHAINS = ('per_pair', 'per_source')


class DenseFeedback(keras.layers.Layer):
  """Dense Feedback Connections D_ense (Eq. 6) between two passes.

  call(features: list of L tensors of the previous pass) -> list of L tensors,
  entry i = f_i + sum_{j<i} C_onv^{i-j}(f_j), where C_onv^{i-j} is (i - j)
  3x3 stride-2 convolutions with ReLU.

  Args:
    widths: channels of the L decoder scales.
    chains: 'per_pair' (default): every pair (i, j), j < i, has its own chain
      of (i - j) convolutions, `self.chains[(i, j)]`. 'per_source': every
      source scale j has one chain `self.chains[j]` of (L - 1 - j)
      convolutions down to scale L - 1, and C_onv^{i-j}(f_j) is its output
      after i - j steps.
  """

  def __init__(self, widths, chains='per_pair', **kwargs):
    super().__init__(**kwargs)
    if chains not in FEEDBACK_CHAINS:
      raise ValueError('DenseFeedback: chains must be one of %s, got %r' %
                       (FEEDBACK_CHAINS, chains))
    self.widths = tuple(widths)
    self.num_levels = len(self.widths)
    self.chain_mode = chains
    self.chains = {}
    if chains == 'per_pair':
      for i in range(1, self.num_levels):
        for j in range(i):
          self.chains[(i, j)] = [
              _conv(self.widths[k], 2, 'feedback_%d_%d_step%d' % (i, j, k - j))
              for k in range(j + 1, i + 1)
          ]
      for (i, j), chain in sorted(self.chains.items()):
        _track_as_attributes(self, 'conv_%d_%d_step' % (i, j), chain)
    else:
      for j in range(self.num_levels - 1):
        self.chains[j] = [
            _conv(self.widths[k], 2, 'feedback_from%d_to%d' % (j, k))
            for k in range(j + 1, self.num_levels)
        ]
      for j, chain in sorted(self.chains.items()):
        _track_as_attributes(self, 'conv_from%d_step' % j, chain)

  def call(self, features):
    out = list(features)  # Eq. 6, i = 1 case and first term of i > 1.
    if self.chain_mode == 'per_pair':
      for i in range(self.num_levels):
        for j in range(i):
          y = features[j]
          for conv in self.chains[(i, j)]:  # C_onv^{i-j}
            y = tf.nn.relu(conv(y))
          out[i] = out[i] + y
      return out
    for j, chain in self.chains.items():
      y = features[j]
      for step, conv in enumerate(chain, start=1):  # C_onv^{step}(f_j)
        y = tf.nn.relu(conv(y))
        out[j + step] = out[j + step] + y
    return out


class RI2ITN(keras.Model):
  """Recurrent Image-to-image Translation Network (Eq. 6-10).

  call(uv_inputs [B,S,S,C] float32) -> displacement map [B,S,S,1] in (-1, 1)
  (tanh, Eq. 10; the caller scales it to millimetres).

  Args:
    uv_size: S, a power of two >= 2.
    num_passes: t, number of unrolled passes (paper: 2).
    share_weights: True (default) = recursive network, one set of encoder /
      decoder / feedback weights for all passes; False = separate per pass.
    channels: widths of the stride-2 convolutions; default Chen20's list cut to
      log2(S) entries so the bottleneck is 1x1. Its length sets the depth.
    stem_channels: width of the first stride-1 convolution (Chen20: 16).
    feedback_chains: 'per_pair' (default) or 'per_source' (module docstring,
      DenseFeedback).
  """

  def __init__(self,
               uv_size=512,
               num_passes=2,
               share_weights=True,
               channels=None,
               stem_channels=CHEN20_STEM_CHANNELS,
               feedback_chains='per_pair',
               **kwargs):
    super().__init__(**kwargs)
    uv_size = int(uv_size)
    if uv_size < 2 or uv_size & (uv_size - 1):
      raise ValueError('RI2ITN: uv_size must be a power of two >= 2, got %d' %
                       uv_size)
    if int(num_passes) < 1:
      raise ValueError('RI2ITN: num_passes must be >= 1, got %r' % num_passes)
    if feedback_chains not in FEEDBACK_CHAINS:
      raise ValueError('RI2ITN: feedback_chains must be one of %s, got %r' %
                       (FEEDBACK_CHAINS, feedback_chains))
    levels = int(round(math.log2(uv_size)))
    if channels is None:
      channels = list(CHEN20_CHANNELS[:levels])
      channels += [CHEN20_CHANNELS[-1]] * (levels - len(channels))
    channels = tuple(int(c) for c in channels)
    if not 1 <= len(channels) <= levels:
      raise ValueError('RI2ITN: need 1..%d stride-2 levels for uv_size %d, got '
                       'channels=%r' % (levels, uv_size, channels))
    self.uv_size = uv_size
    self.num_passes = int(num_passes)
    self.share_weights = bool(share_weights)
    self.channels = channels
    self.feedback_chains = feedback_chains
    num_nets = 1 if self.share_weights else self.num_passes
    self.passes = [
        UVEncoderDecoder(channels, stem_channels, name='pass%d' % t)
        for t in range(num_nets)
    ]
    widths = self.passes[0].widths[:len(channels)]
    num_feedback = 0
    if self.num_passes > 1:
      num_feedback = 1 if self.share_weights else self.num_passes - 1
    self.feedbacks = [
        DenseFeedback(widths, feedback_chains, name='feedback%d' % (t + 2))
        for t in range(num_feedback)
    ]
    _track_as_attributes(self, 'pass_', self.passes)
    _track_as_attributes(self, 'feedback_', self.feedbacks)
    # Eq. 10 fusion, initialised to the mean of the passes. With t = 1 there
    # is nothing to fuse: a 1x1 convolution of one channel is an affine map
    # that the Eq. 9 deconvolution already expresses, so it is left out and
    # RI2ITN(num_passes=1) is exactly Chen20's tanh(deconv0(...)) network.
    self.fusion = None
    if self.num_passes > 1:
      self.fusion = keras.layers.Conv2D(
          1,
          1,
          name='fusion',
          kernel_initializer=keras.initializers.Constant(1.0 /
                                                         self.num_passes))

  def _net(self, t):
    return self.passes[0 if self.share_weights else t]

  def _check_input(self, uv_inputs):
    shape = uv_inputs.shape
    if shape.rank != 4 or (shape[1] is not None and shape[1]
                           != self.uv_size) or (shape[2] is not None and
                                                shape[2] != self.uv_size):
      raise ValueError('RI2ITN: expected input [B,%d,%d,C], got %s' %
                       (self.uv_size, self.uv_size, shape))

  def unroll(self, uv_inputs):
    """Runs the passes; per pass (encoder activations x_0..x_L, decoder
    features f_0..f_{L-1}, pre-fusion map [B,S,S,1]) as a list of t tuples.
    For inspection and tests; call() gives the displacement map."""
    self._check_input(uv_inputs)
    trace = []
    feedback = None  # Eq. 6, case t = 1: no feedback.
    for t in range(self.num_passes):
      net = self._net(t)
      skips = net.encode(uv_inputs, feedback)
      f0, features = net.decode(skips)
      trace.append((skips, features, f0))
      if t + 1 < self.num_passes:
        fb = self.feedbacks[0 if self.share_weights else t]
        feedback = fb(features)  # Eq. 6 for pass t + 1
    return trace

  def call(self, uv_inputs):
    self._check_input(uv_inputs)
    outputs = []
    feedback = None  # Eq. 6, case t = 1: no feedback.
    for t in range(self.num_passes):
      f0, features = self._net(t)(uv_inputs, feedback=feedback)
      outputs.append(f0)
      if t + 1 < self.num_passes:
        fb = self.feedbacks[0 if self.share_weights else t]
        feedback = fb(features)  # Eq. 6 for pass t + 1
    if self.fusion is None:  # t = 1: Chen20's base network exactly
      return tf.tanh(outputs[0])
    fused = tf.concat(outputs, axis=-1)  # C_oncat(f_0^1, ..., f_0^t)
    return tf.tanh(self.fusion(fused))  # Eq. 10


def chen20_uv_network(uv_size,
                      channels=None,
                      stem_channels=CHEN20_STEM_CHANNELS):
  """Chen20's base network alone: tanh(deconv0(encoder-decoder)).

  Returns (encoder_decoder_layer, fn) where fn(x [B,S,S,C]) -> [B,S,S,1].
  """
  levels = int(round(math.log2(uv_size)))
  if channels is None:
    channels = CHEN20_CHANNELS[:levels]
  net = UVEncoderDecoder(channels, stem_channels, name='chen20_uv')

  def fn(x):
    return tf.tanh(net(x)[0])

  return net, fn
