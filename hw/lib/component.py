"""The base of every component built from one config object (DESIGN.md section 2).

A component checks its config with :func:`check_config` before it derives its signature from
it (so a wrong object fails with a message naming the parameter, not with an attribute error
deep in a layout), then hands both to :class:`ConfiguredComponent`, which keeps the config and
shows it read-only as ``config``.
"""

from amaranth.lib import wiring


__all__ = ["ConfiguredComponent", "check_config"]


def check_config(owner, config, config_class):
    """Check that ``config`` is a ``config_class``; return it."""
    if not isinstance(config, config_class):
        raise TypeError(f"{owner}.config must be a {config_class.__name__}, not {config!r}")
    return config


class ConfiguredComponent(wiring.Component):
    """A :class:`~amaranth.lib.wiring.Component` made from one config object.

    Parameters
    ----------
    config
        The config the component is built from, already checked by the subclass.
    members : dict
        The signature's members, as :class:`~amaranth.lib.wiring.Component` takes them.
    """

    def __init__(self, config, members):
        self._config = config
        super().__init__(members)

    @property
    def config(self):
        """The config the component is built from."""
        return self._config
