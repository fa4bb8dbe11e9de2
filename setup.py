"""Only the optional compiled GC callback; everything else is in pyproject.toml.

``optional=True``: without a working compiler the build goes on and the tracer uses its
Python callback (labkit/capture/gccallback.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("labkit.capture._gcevents", ["labkit/capture/_gcevents.c"],
                             optional=True)])
