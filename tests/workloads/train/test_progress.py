"""The training bar: its last line is written once, even in a log that keeps every redraw."""

from __future__ import annotations

import time


def test_the_last_training_line_is_written_once(tmp_path, capsys):
    from fastsd.workloads.train.progress import Progress

    progress = Progress(tmp_path / "metrics.jsonl", total=3, start_step=0, elapsed_s=0.0, enabled=True)
    for step in (1, 2, 3):
        time.sleep(0.15)  # past tqdm's redraw interval: every step draws
        progress.step(step, "unet", 1.0 / step, 1e-6)
    time.sleep(0.15)  # the final save
    progress.close()
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "3/3" in line]
    assert len(lines) == 1, lines
    assert "2/3" in err and len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
