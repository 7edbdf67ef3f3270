"""Model, data and local training shared by participants (training) and nodes (evaluation, the reference update).

torch is imported by these files only; the chain client in `fedledger.sdk` never needs it.
"""
