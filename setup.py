"""Build script for the parts pyproject.toml cannot declare: packages and the Cython extensions.

`_fast/*.pyx` is built as `ctid._fast.<name>` (package_dir maps the `ctid._fast` package to the
top-level `_fast/` folder, so nothing named `_fast` ever lands at the top of site-packages).
The first-party plugins under the top-level `plugins/` folder install as the `ctid_plugins`
package; `plugins/examples/` is not part of it (each example is its own distribution).
Without a working C compiler (or without Cython and without generated C files) the extensions
are skipped with a warning and the pure-Python twins are used at import time
(set CTID_REQUIRE_COMPILED=1 to make that an error instead).
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
DIRECTIVES = {"boundscheck": False, "wraparound": False, "language_level": 3}


def _warn(message: str) -> None:
    if os.environ.get("CTID_REQUIRE_COMPILED"):  # a CI runner that has a compiler: fail loudly
        raise SystemExit(f"CTID_REQUIRE_COMPILED is set: {message}")
    bar = "*" * 78
    sys.stderr.write(f"\n{bar}\nWARNING: {message}\nctid will use its pure-Python implementations.\n{bar}\n\n")


def _extensions() -> list[Extension]:
    os.chdir(HERE)  # relative source paths, whichever directory the build runs from
    pyx = sorted(glob.glob(os.path.join("_fast", "*.pyx")))
    try:
        from Cython.Build import cythonize
    except ImportError:
        # an sdist carries the generated C files; a bare checkout needs Cython
        c_files = [p[:-4] + ".c" for p in pyx if os.path.exists(p[:-4] + ".c")]
        if not c_files:
            if pyx:
                _warn("Cython is not installed: the compiled extensions are not built.")
            return []
        return [_extension(c) for c in c_files]
    return cythonize([_extension(p) for p in pyx], compiler_directives=DIRECTIVES, quiet=True)


def _extension(source: str) -> Extension:
    name = os.path.splitext(os.path.basename(source))[0]
    headers = sorted(glob.glob(os.path.join("_fast", "*.h")))
    return Extension(f"ctid._fast.{name}", [source], include_dirs=["_fast"], depends=headers)


class OptionalBuildExt(build_ext):
    """build_ext that optimises, and that turns a failed compile into a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError, ...)
            _warn(f"the C extensions could not be built ({type(exc).__name__}: {exc}).")

    def build_extension(self, ext: Extension) -> None:
        flag = "/O2" if self.compiler.compiler_type == "msvc" else "-O2"
        ext.extra_compile_args = [*ext.extra_compile_args, flag]
        try:
            super().build_extension(ext)
        except Exception as exc:  # CCompilerError, CompileError, DistutilsExecError, missing headers ...
            _warn(f"building {ext.name} failed ({type(exc).__name__}: {exc}).")


#: First-party plugins, listed one by one: `plugins/examples/` must never be swept in.
PLUGIN_PACKAGES = [
    "ctid_plugins",
    "ctid_plugins.screenpop",
    "ctid_plugins.screenpop.adapters",
    "ctid_plugins.screenpop.contacts",
    "ctid_plugins.screenpop.data",  # the sample prefix table (a data-only folder, listed so setuptools ships it)
    "ctid_plugins.reporting",
    "ctid_plugins.qa",
]

setup(
    packages=[*find_packages(include=["ctid", "ctid.*"]), "ctid._fast", *PLUGIN_PACKAGES],
    package_dir={"ctid._fast": "_fast", "ctid_plugins": "plugins"},
    # the Cython sources and C headers go into the sdist (and wheel) with the package
    package_data={"ctid": ["*.toml", "py.typed"], "ctid._fast": ["*.pyx", "*.pxd", "*.h"],
                  "ctid_plugins.screenpop": ["README.md"], "ctid_plugins.screenpop.data": ["*.csv"],
                  "ctid_plugins.reporting": ["README.md"], "ctid_plugins.qa": ["README.md"]},
    exclude_package_data={"ctid._fast": ["*.c"]},  # generated; the sdist has it, the wheel needs only the .so
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)
