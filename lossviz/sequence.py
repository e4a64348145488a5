"""Placeholder until this family is implemented."""

FORMULA = ""


def MaskedSparseCategoricalCrossentropy(*args, **kwargs):
    raise NotImplementedError


def end_token_class_weights(*args, **kwargs):
    raise NotImplementedError


def masked_accuracy(*args, **kwargs):
    raise NotImplementedError


def masked_sparse_categorical_crossentropy(*args, **kwargs):
    raise NotImplementedError


def perplexity(*args, **kwargs):
    raise NotImplementedError


def special_token_mae(*args, **kwargs):
    raise NotImplementedError
