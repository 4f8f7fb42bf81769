import os

# The built-image tests run with `make test-images` only; `make test` needs no engine.
collect_ignore = [] if os.environ.get("FASTSD_IMAGE_TESTS") == "1" else ["containers"]
