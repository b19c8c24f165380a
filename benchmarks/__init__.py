"""StoreDesk's performance benchmarks (DESIGN.md §8, issue 11): ``uv run python -m benchmarks``.

Figures with their same-run baselines and targets; see ``docs/benchmarks.md``.
"""
