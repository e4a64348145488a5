"""Placeholder until this family is implemented."""

FORMULA = ""


def BPMLL(*args, **kwargs):
    raise NotImplementedError


def bpmll_loss(*args, **kwargs):
    raise NotImplementedError


def bpmll_loss_loop(*args, **kwargs):
    raise NotImplementedError


def bpmll_loss_pairwise(*args, **kwargs):
    raise NotImplementedError
