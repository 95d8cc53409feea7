"""Comparison figures as deraining papers draw them.

One picture per image: the rainy input, each method's output and the ground truth side by side,
each titled with its PSNR/SSIM (Y channel), and under each a zoomed crop of the same region,
outlined on the full images. And a scatter plot of labelled points (quality against cost).
"""
import numpy as np


def rainiest_crop(rainy, clean, fraction=0.3):
    """``(top, left, size)``: the square, ``fraction`` of the shorter side, where the rainy image
    differs most from the clean one (mean absolute difference; both ``(H, W, 3)`` uint8)."""
    height, width = clean.shape[:2]
    size = max(8, int(min(height, width) * fraction))
    error = np.abs(rainy.astype(np.float32) - clean.astype(np.float32)).mean(2)
    integral = np.pad(error.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    step = max(1, size // 4)
    grid = sums[::step, ::step]
    top, left = np.unravel_index(np.argmax(grid), grid.shape)
    return int(top * step), int(left * step), size


def draw_comparison(path, panels, crop, zoom_title='zoom'):
    """Writes ``path`` (PNG): ``panels`` is ``[(title, (H, W, 3) uint8 RGB)]`` left to right;
    ``crop`` = ``(top, left, size)`` is outlined on every panel and shown enlarged below it."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import patches
    from matplotlib import pyplot as plt
    top, left, size = crop
    height, width = panels[0][1].shape[:2]
    columns = len(panels)
    panel_width = 2.6
    figure, axes = plt.subplots(
        2,
        columns,
        figsize=(panel_width * columns, panel_width * (height / width + 1) + 0.6),
        gridspec_kw={'height_ratios': [height / width, 1]},
        squeeze=False)
    for column, (title, image) in enumerate(panels):
        full, zoomed = axes[0, column], axes[1, column]
        full.imshow(image)
        full.add_patch(patches.Rectangle((left, top), size, size, fill=False, edgecolor='red', linewidth=1.2))
        full.set_title(title, fontsize=8)
        zoomed.imshow(image[top:top + size, left:left + size], interpolation='nearest')
        for axis in (full, zoomed):
            axis.set_xticks([])
            axis.set_yticks([])
    axes[1, 0].set_ylabel(zoom_title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def draw_labelled_points(path, points, xlabel, ylabel):
    """Writes ``path`` (PNG): one point per ``(label, x, y)`` of ``points``, each annotated with its label."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, x, y in points:
        axes.scatter(x, y)
        axes.annotate(label, (x, y), textcoords='offset points', xytext=(4, 4))
    axes.margins(0.15)  # room for the labels of the outermost points
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
