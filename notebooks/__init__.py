"""The lab's notebooks (jupytext py:percent sources), shipped inside the package as
``labkit.lab_notebooks``; ``labkit.resources`` finds them, installed or in a checkout."""
