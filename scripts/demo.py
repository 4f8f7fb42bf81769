"""`make demo` (foundation stage): create a demo session and show the registries."""

import subprocess
import sys

for argv in (["models", "list"], ["controlnet", "list", "--base", "sd15"], ["session", "list"]):
    print(f"$ fastsd {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, "-m", "fastsd", *argv], check=True)
