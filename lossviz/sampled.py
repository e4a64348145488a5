"""Placeholder until this family is implemented."""

FORMULA = ""


def SampledSoftmax(*args, **kwargs):
    raise NotImplementedError


def full_softmax_loss(*args, **kwargs):
    raise NotImplementedError


def sampled_softmax_loss(*args, **kwargs):
    raise NotImplementedError
