"""bench/parallel.py prints the table the README promises (its columns line up), or JSON with --json."""
from tests.bench_module import load_bench


def test_table_columns_line_up():
    bench = load_bench("parallel")
    row = {"kernel": "optim._sgd", "work": 535818, "serial_us": 242.8, "threaded_us": 571.9, "speedup": 0.42,
           "threshold": 4194304, "chosen": "serial", "faster": "serial"}
    header, rule = bench.table_header(len("activation._bias_backward")).splitlines()
    line = bench.table_row(row, len("activation._bias_backward"))
    assert header.split() == ["kernel", "work", "serial", "us", "threaded", "us", "speed-up", "threshold", "chosen",
                              "faster"]
    assert len(line) == len(header) == len(rule) and set(rule) == {"-"}
    assert line.split() == ["optim._sgd", "535,818", "242.8", "571.9", "0.42", "4,194,304", "serial", "serial"]
    for title in ("work", "threshold", "speed-up"):  # numbers end under their right-aligned titles
        end = header.index(title) + len(title)
        assert line[end - 1] != " " and (end == len(line) or line[end] == " ")
    assert bench.table_row({**row, "work": None}, 26).split()[1] == "-"
