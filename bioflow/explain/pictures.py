"""Pictures of explanations: image grids and heat-map overlays as uint8 RGB arrays."""
import numpy as np

PAD = 2


def _rgb(image):
    """``[H, W]`` or ``[H, W, 1|3]`` in [0, 1] → ``[H, W, 3]``."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def heat_colours(heat):
    """A black-red-yellow-white colour map of ``heat`` in [0, 1]: ``[H, W, 3]``."""
    h = np.clip(np.asarray(heat, np.float32), 0, 1)
    return np.stack([np.clip(3 * h, 0, 1), np.clip(3 * h - 1, 0, 1), np.clip(3 * h - 2, 0, 1)], axis=-1)


def overlay(image, heat, alpha=0.5):
    """``heat`` (``[H, W]`` in [0, 1]) drawn over a grey ``image``: ``[H, W, 3]``."""
    return (1 - alpha) * _rgb(image) + alpha * heat_colours(heat)


def scaled(maps):
    """Each map scaled to [0, 1] by its own minimum and maximum (a flat map becomes 0)."""
    maps = np.asarray(maps, np.float32)
    low = maps.reshape(len(maps), -1).min(axis=1)[:, None, None]
    high = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.where(high > low, (maps - low) / np.maximum(high - low, 1e-30), 0.0)


def grid(rows, min_size=64):
    """A grid of ``rows`` (lists of images in [0, 1], any channel count), white between cells → uint8 RGB.

    Cells are enlarged by whole factors (nearest) so that the smallest is at least ``min_size`` pixels.
    """
    cells = [[_rgb(c) for c in row] for row in rows]
    height = max(c.shape[0] for row in cells for c in row)
    width = max(c.shape[1] for row in cells for c in row)

    def fit(cell):
        fy, fx = max(1, height // cell.shape[0]), max(1, width // cell.shape[1])
        big = np.repeat(np.repeat(cell, fy, axis=0), fx, axis=1)[:height, :width]
        out = np.ones((height, width, 3), np.float32)
        out[:big.shape[0], :big.shape[1]] = big
        return np.pad(out, ((PAD, PAD), (PAD, PAD), (0, 0)), constant_values=1.0)

    columns = max(len(row) for row in cells)
    blank = np.ones((height + 2 * PAD, width + 2 * PAD, 3), np.float32)
    image = np.concatenate([np.concatenate([fit(c) for c in row] + [blank] * (columns - len(row)), axis=1)
                            for row in cells], axis=0)
    factor = max(1, -(-min_size // max(1, min(height, width))))
    image = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
