"""Fuzzing at every edge where bytes from outside come in (issue 16 item 2).

``fuzz.targets`` names the edges and what each may answer; ``python -m fuzz.run`` runs them
under atheris (coverage-guided), ``tests/test_fuzz.py`` replays the committed corpus and
runs each target briefly in CI. docs/reliability.md has the policy and the figures.
"""
