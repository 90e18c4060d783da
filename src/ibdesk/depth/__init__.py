"""Level 2 order book: book maintenance, recording, and microstructure analysis.

Recording: `book` (IB row semantics, pure), `capture` (one symbol's book, buffers and part
files), `recorder` (the `record-depth` service over the IB layer).
Analysis: `loading` (files of a symbol-day), `analysis` (the book pass, pure), `tape`
(trades against the book, pure), `stats` (numeric helpers), `results` (parameter and result
values), `report` (JSON report and the `analyze-depth` service), `plots` (figures).
Test and benchmark data: `synthetic` (snapshots and trades in the store's schemas).
"""
