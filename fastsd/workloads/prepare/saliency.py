"""Where the subject is when no face is found: spectral-residual saliency plus local entropy."""

from __future__ import annotations

MAP_SIDE = 128  # the energy map is computed on a copy whose longer side has this many pixels
ENTROPY_BINS = 16
FLAT_SPREAD = 0.04  # best and worst window within 4% of each other: nothing stands out
CENTRE_PULL = 0.05  # a window at the very edge loses 5% of its score (ties go to the centre)


def _spectral_residual(grey):
    """Hou & Zhang's spectral-residual saliency of a float grey image, scaled to [0, 1]."""
    import cv2
    import numpy as np

    spectrum = np.fft.fft2(grey)
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency, (0, 0), sigmaX=max(grey.shape) / 40)
    return saliency / (saliency.max() or 1.0)


def _local_entropy(grey_u8, window: int):
    """Shannon entropy of the grey levels around each pixel (16 bins, box window), scaled to [0, 1]."""
    import cv2
    import numpy as np

    levels = (grey_u8.astype(np.int32) * ENTROPY_BINS) // 256
    entropy = np.zeros(grey_u8.shape, np.float64)
    for level in range(ENTROPY_BINS):
        share = cv2.blur((levels == level).astype(np.float64), (window, window))
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy -= np.where(share > 0, share * np.log2(share), 0.0)
    return entropy / np.log2(ENTROPY_BINS)


def energy_map(rgb):
    """(energy, scale): the subject-likelihood map of `rgb` at `scale` times its size."""
    import cv2
    import numpy as np

    height, width = rgb.shape[:2]
    scale = min(1.0, MAP_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    window = max(3, (max(size) // 16) | 1)
    energy = 0.5 * _spectral_residual(grey.astype(np.float64) / 255.0) + 0.5 * _local_entropy(grey, window)
    return energy, scale


def best_square(energy, side: int):
    """(x0, y0, spread) of the `side`-pixel window of `energy` holding the most of it (summed-area table).

    `spread` is how much better the best window is than the worst, relative to the best.
    """
    import cv2
    import numpy as np

    height, width = energy.shape
    side = max(1, min(side, height, width))
    table = cv2.integral(energy.astype(np.float64))
    sums = table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]
    ys, xs = np.mgrid[0 : sums.shape[0], 0 : sums.shape[1]]
    off_y = np.abs(ys - (sums.shape[0] - 1) / 2) / max(1.0, (sums.shape[0] - 1) / 2)
    off_x = np.abs(xs - (sums.shape[1] - 1) / 2) / max(1.0, (sums.shape[1] - 1) / 2)
    scores = sums * (1.0 - CENTRE_PULL * np.maximum(off_x, off_y))
    y0, x0 = np.unravel_index(int(np.argmax(scores)), scores.shape)
    best = float(sums.max())
    spread = (best - float(sums.min())) / best if best > 0 else 0.0
    return int(x0), int(y0), spread


def salient_square(rgb, side: int):
    """(x0, y0) of the `side`-pixel square of `rgb` that holds the subject, or None when all is flat."""
    energy, scale = energy_map(rgb)
    height, width = rgb.shape[:2]
    x0, y0, spread = best_square(energy, round(side * scale))
    if spread < FLAT_SPREAD:
        return None
    x0 = min(max(0, round(x0 / scale)), width - side)
    y0 = min(max(0, round(y0 / scale)), height - side)
    return x0, y0
