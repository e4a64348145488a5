"""Placeholder until this family is implemented."""

FORMULA = ""


def EmbeddingTargetLoss(*args, **kwargs):
    raise NotImplementedError


def embedding_target_loss(*args, **kwargs):
    raise NotImplementedError


def gumbel_softmax(*args, **kwargs):
    raise NotImplementedError


def naive_power_sharpen(*args, **kwargs):
    raise NotImplementedError


def power_sharpen(*args, **kwargs):
    raise NotImplementedError


def soft_embedding_lookup(*args, **kwargs):
    raise NotImplementedError


def straight_through_one_hot(*args, **kwargs):
    raise NotImplementedError


def temperature_softmax(*args, **kwargs):
    raise NotImplementedError
