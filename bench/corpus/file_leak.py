# culprit: read_config
# Config files are opened on every call and the file objects kept, never closed.
import os
import tempfile
import time

_open = []
path = os.path.join(tempfile.mkdtemp(), "app.cfg")
with open(path, "w") as fh:
    fh.write("x = 1\n")

def read_config():
    fh = open(path)
    _open.append(fh)
    return fh.readline()

for i in range(150):
    read_config()
time.sleep(0.5)
