"""Print the bad-input battery as a table (kind -> the one line the user sees):
`python tests/bad_input_table.py` runs tests/test_bad_input.py and collects every message."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "table.json"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(HERE / "test_bad_input.py")], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "CLASSWISE_BAD_INPUT_TABLE": str(table)})
        rows = json.loads(table.read_text())
    print(f"| # | kind | message ({len(rows)} kinds) |\n| --- | --- | --- |")
    for i, (kind, message) in enumerate(rows.items(), 1):
        print(f"| {i} | {kind} | {message.replace('|', '/')} |")
