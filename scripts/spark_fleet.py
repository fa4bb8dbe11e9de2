"""Run the README's Spark snippet and fleet SQL on real Spark; compare with DuckDB's rows.

    python scripts/spark_fleet.py README.md FLEET_PARQUET_ROOT DUCKDB_JSON
(called by scripts/check-spark-fleet, under .venv-spark: pyspark, no labkit)."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path


def main() -> int:
    readme, root, answer = Path(sys.argv[1]).read_text(), sys.argv[2], sys.argv[3]
    snippet = re.search(r"```python\n(from pyspark.sql import.*?)```", readme, re.S).group(1)
    sql = re.search(r"```sql\n(.*?)```", readme, re.S).group(1)
    snippet = snippet.replace('root = "fleet"', f"root = {root!r}")
    ns: dict = {"GROWING_SITES": sql}
    exec(compile(snippet, "README.md (Spark snippet)", "exec"), ns)
    import pyspark  # in .venv-spark only

    rows = [r.asDict() for r in ns["spark"].sql(sql).collect()]
    expected = json.loads(Path(answer).read_text())["growing_sites"]
    assert len(rows) == len(expected), (rows, expected)
    for got, want in zip(rows, expected, strict=True):
        for k, v in want.items():
            same = (math.isclose(got[k], v, rel_tol=1e-9) if isinstance(v, float)
                    else got[k] == v)
            assert same, (k, got[k], v)
    print(f"Spark {pyspark.__version__}: the README's fleet query gives the same "
          f"{len(rows)} row(s) as labkit fleet on DuckDB: {rows}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
