"""SecAgg+ over the chain: the round stages, key advertisements and share postings of secure rounds.

The module object lives in `module.py`; this package imports nothing at load time because the
federation module imports `stages` from here.
"""
