"""Render one frame of a 3D Gaussian Splatting scene with a chosen backend and measure it:
PSNR against the fp64 reference, cycles, lane utilization, interval skip rate, frames per second.

Backends:

``reference``
    The float reference renderer (:mod:`golden.splat_raster`) in fp32.
``model``
    The bit-exact GBU datapath model (:func:`golden.gbu_model.render_gbu`) for a
    :class:`~hw.gbu.config.GBUConfig`; its cycles are the lanes' shading cycles
    (:meth:`~hw.gbu.config.GBUConfig.tile_cycles`), tiles one after another; its skip, blend
    and stop decisions are compared with fp64's (:mod:`golden.gbu_decisions`).
``rtl``
    The GBU core's emitted Verilog in cocotb (:mod:`sim.gbu_frame`): its pixels, and the clock
    cycles it took, measured (tile read-out, pipeline fill and drain included).
"""

import dataclasses
import json
import math
import time
from pathlib import Path

import torch

from golden.gaussians import Camera
from golden.gbu_decisions import decision_agreement
from golden.gbu_model import render_gbu
from golden.ply import load_ply
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_raster import render
from golden.splat_scenes import garden_scene, synthetic_scene
from hw.gbu.config import GBUConfig


__all__ = ["BACKENDS", "psnr", "load_camera", "load_scene", "Frame", "render_frame"]

BACKENDS = ("reference", "model", "rtl")


def psnr(image, reference):
    """Peak signal-to-noise ratio in dB of ``image`` against ``reference`` (peak 1.0)."""
    mse = float(((image.to(torch.float64) - reference.to(torch.float64)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def load_camera(path):
    """A :class:`~golden.gaussians.Camera` from a JSON file with ``viewmat`` (4x4 world to camera,
    OpenCV axes), ``fx``, ``fy``, ``cx``, ``cy``, ``width``, ``height``."""
    path = Path(path)
    try:
        fields = json.loads(path.read_text())
        return Camera(viewmat=torch.tensor(fields["viewmat"], dtype=torch.float64),
                      **{k: fields[k] for k in ("fx", "fy", "cx", "cy", "width", "height")})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"camera file {path}: {error}; expected JSON with viewmat (4x4), fx, "
                         f"fy, cx, cy, width, height") from None


def _resized(camera, size):
    if size is None:
        return camera
    width, height = size
    sx, sy = width / camera.width, height / camera.height
    return dataclasses.replace(camera, fx=camera.fx * sx, fy=camera.fy * sy, cx=camera.cx * sx,
                               cy=camera.cy * sy, width=width, height=height)


def load_scene(scene, *, camera=0, camera_file=None, size=None, seed=0):
    """The Gaussians and camera of a frame.

    Parameters
    ----------
    scene : str
        ``"garden"`` (``../shared/data/test_garden.npz``, cameras 0..2), ``"synthetic"`` (the
        seeded edge-case scene of :func:`golden.splat_scenes.synthetic_scene`, 64 x 48 unless
        ``size`` says otherwise) or the path of a 3DGS ``.ply`` (then ``camera_file`` is needed).
    camera : int
        Camera index of the garden scene.
    camera_file : path-like or None
        JSON camera (:func:`load_camera`); overrides the scene's own camera.
    size : (int, int) or None
        Output ``(width, height)``: the camera's intrinsics are scaled to it.
    seed : int
        Seed of the synthetic scene and of the garden opacities.

    Returns
    -------
    (GaussianScene, Camera, str)
        The scene, the camera and a short name of the scene for file names.
    """
    if scene == "synthetic":
        width, height = size or (64, 48)
        gaussians, cam = synthetic_scene(seed, width, height)
        name = f"synthetic{seed}"
    elif scene == "garden":
        gaussians, cameras = garden_scene(seed=seed)
        if not 0 <= camera < len(cameras):
            raise ValueError(f"camera={camera} is out of range: the garden scene has cameras "
                             f"0..{len(cameras) - 1}")
        cam, name = cameras[camera], f"garden{camera}"
    else:
        path = Path(scene)
        if path.suffix != ".ply":
            raise ValueError(f"scene={scene!r}: expected 'garden', 'synthetic' or a .ply file")
        if camera_file is None:
            raise ValueError(f"scene {path}: a .ply holds no camera: give a camera file")
        gaussians, cam, name = load_ply(path), None, path.stem
    if camera_file is not None:
        cam = load_camera(camera_file)
    return gaussians, _resized(cam, size), name


@dataclasses.dataclass(frozen=True)
class Frame:
    """A rendered frame: ``image`` (H, W, 3) float64 in [0, 1] and its ``report`` (JSON-ready)."""
    image: torch.Tensor
    report: dict


def _model_figures(config, result, fmax_hz):
    lanes = config.lanes
    setups = sum(int(t.row_setups.sum()) for t in result.tiles)
    skipped = sum(int(t.row_skipped.sum()) for t in result.tiles)
    pairs = sum(int(t.row_pairs.sum()) for t in result.tiles)
    cycles = result.cycles
    figures = {
        "evaluations": result.evaluations,
        "evaluations_per_cycle": result.evaluations / cycles if cycles else 0.0,
        "lane_utilization": result.evaluations / (lanes * cycles) if cycles else 0.0,
        # Of the (Gaussian, pixel) pairs of the rows set up, those outside the row's
        # contributing interval, which IRSS never evaluates.
        "interval_skip_rate": skipped / (config.tile * setups) if setups else 0.0,
        # Of the (Gaussian, pixel) pairs of the rows still alive, set up or not (out of the
        # Gaussian's row range), those never evaluated.
        "pixel_skip_rate": 1 - result.evaluations / (config.tile * pairs) if pairs else 0.0,
    }
    return {**figures, **_clock_figures(config, cycles, fmax_hz)}


def _clock_figures(config, cycles, fmax_hz):
    figures = {"config": config.to_dict(), "cycles": cycles,
               "fps_at_1ghz": 1e9 / cycles if cycles else math.inf}
    if fmax_hz is not None:
        figures["fmax_mhz"] = fmax_hz / 1e6
        figures["fps_at_fmax"] = fmax_hz / cycles if cycles else math.inf
    return figures


def _render_rtl(config, splats, tiles, progress):
    # Imported here: the simulator runner is only needed by this backend.
    from sim.gbu_frame import render_tiles
    gx, gy = tiles.grid
    tile = config.tile
    rtl = render_tiles(config, splats, tiles, range(gx * gy), progress=progress)
    raw = torch.zeros(gy * tile, gx * tile, 3, dtype=torch.int64)
    for t, pixels in enumerate(rtl.pixels):
        X, Y = (t % gx) * tile, (t // gx) * tile
        raw[Y:Y + tile, X:X + tile] = torch.tensor(
            [[int(c) for c in p.color] for p in pixels]).reshape(tile, tile, 3)
    image = raw[:splats.height, :splats.width].to(torch.float64)
    return image / (1 << config.color_acc_format.f_bits), rtl.cycles


def render_frame(scene, camera, *, backend, config=None, fmax_hz=None, progress=None):
    """Render ``scene`` from ``camera`` with ``backend`` (one of :data:`BACKENDS`) and measure it.

    ``config`` (a :class:`~hw.gbu.config.GBUConfig`, default ``GBUConfig()``) sets the GBU for
    the ``model`` backend; ``fmax_hz``, the clock that ``fps_at_fmax`` assumes; ``progress``
    wraps the iterable of tiles (``tqdm.tqdm`` for example).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not valid: expected one of "
                         f"{', '.join(BACKENDS)}")
    config = GBUConfig() if config is None else config
    if not isinstance(config, GBUConfig):
        raise TypeError(f"config must be a GBUConfig, not {config!r}")
    started = time.perf_counter()
    splats = preprocess(scene, camera, torch.float64)
    tiles = bin_splats(splats)
    reference = render(scene, camera, torch.float64)
    report = {"backend": backend, "gaussians": len(scene), "width": camera.width,
              "height": camera.height, "tiles": tiles.grid[0] * tiles.grid[1],
              "tile_list_entries": len(tiles.ids)}
    if backend == "reference":
        out = render(scene, camera, torch.float32)
        image = out.image.to(torch.float64)
        report["dtype"] = "float32"
        report["stats"] = dataclasses.asdict(out.stats)
    elif backend == "model":
        result = render_gbu(config, splats, tiles, record_decisions=True, progress=progress)
        image = result.image
        report.update(_model_figures(config, result, fmax_hz))
        agree, total = decision_agreement(result, splats, tiles)
        report["decision_pairs"] = total
        report["decisions_agree_vs_fp64"] = agree / total if total else 1.0
    else:
        image, cycles = _render_rtl(config, splats, tiles, progress)
        report.update(_clock_figures(config, cycles, fmax_hz))
    report["psnr_db_vs_fp64"] = psnr(image, reference.image)
    report["wall_time_s"] = round(time.perf_counter() - started, 2)
    return Frame(image=image, report=report)
