"""The README's usage example runs as written and gives the shapes its comments promise."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert namespace["y"].shape == (5, 2, 20)
    assert namespace["same"].num_layers == 2
    h_n = namespace["h_n"]
    assert h_n.shape == (1, 2, 20)  # the GRU's h_n from the last line, (L*D, B, H)
