"""Report on one or more cpe runs: per-step tables on stdout, a CSV export, PNG plots
and one self-contained ``report.html`` comparing the runs side by side.

python -m cpe.report runs/demo-20261124-120000
python -m cpe.report runs/a runs/b --out reports/a-vs-b
python -m cpe.report runs/a --timings --csv metrics.csv --quiet
"""
