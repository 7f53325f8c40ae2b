"""Data preparation stages of the BPM pipeline: one module per DVC stage, each with a pure core
(tables in, tables out) and a thin ``run()`` that reads params, files and writes outputs."""
