"""argparse value types and options shared by the command lines of ``sw``."""

import argparse


__all__ = ["integer", "size", "add_scene_arguments", "scene_arguments"]


def integer(text):
    """An integer in any base Python reads (``42``, ``0x2a``, ``0b101010``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def size(text):
    """An image size ``WIDTHxHEIGHT``, both at least 1."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be >= 1")
    return width, height


def add_scene_arguments(parser, default):
    """The options that pick a frame (a scene and its camera), ``--scene`` defaulting to
    ``default``; :func:`scene_arguments` turns them into :func:`sw.frame.load_scene`'s."""
    parser.add_argument("--scene", default=default,
                        help=f"'garden', 'synthetic' or a .ply file (default: {default})")
    parser.add_argument("--camera", type=int, default=0, help="garden camera index (default 0)")
    parser.add_argument("--camera-file", help="JSON camera: viewmat, fx, fy, cx, cy, width, "
                                              "height (needed with a .ply)")
    parser.add_argument("--resolution", type=size, help="WIDTHxHEIGHT (default: the camera's)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")


def scene_arguments(args):
    """``(scene, keyword arguments)`` of :func:`sw.frame.load_scene` from the options of
    :func:`add_scene_arguments`."""
    return args.scene, dict(camera=args.camera, camera_file=args.camera_file,
                            size=args.resolution, seed=args.seed)
