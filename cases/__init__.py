"""The shipped cases, installed as the package data of `xdecay.cases` (pyproject.toml
maps this folder there; xdecay/case_files.py reads it)."""
