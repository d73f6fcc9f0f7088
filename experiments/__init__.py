"""Experiments that reproduce the paper's claims in the sketch world, end to end, with models trained by our code
(`rationalrewards experiment ...`)."""
