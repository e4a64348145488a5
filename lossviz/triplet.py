"""Placeholder until this family is implemented."""

FORMULA = ""


def CosineTripletLoss(*args, **kwargs):
    raise NotImplementedError


def CosineTripletLossLayer(*args, **kwargs):
    raise NotImplementedError


def IdentityLoss(*args, **kwargs):
    raise NotImplementedError


def MaskedCrossEntropyLayer(*args, **kwargs):
    raise NotImplementedError


def build_masked_lm_model(*args, **kwargs):
    raise NotImplementedError


def build_triplet_models(*args, **kwargs):
    raise NotImplementedError


def cosine_triplet_loss(*args, **kwargs):
    raise NotImplementedError
