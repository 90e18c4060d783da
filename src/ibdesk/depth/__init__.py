"""Level 2 order book: book maintenance, recording, and microstructure analysis.

`analysis` (pure metrics), `loading` (files of a symbol-day), `report` (JSON report and
the `analyze-depth` service) and `plots` (figures) make up the analyzer.
"""
