"""Training task of the triplet family: a retrieval toy and a masked LM.

Two variants of the task ``"triplet"``, each trained with the same code users
import from ``lossviz.triplet``:

- ``"triplet"``: question/answer retrieval trained through the loss-as-output
  model of ``build_triplet_models`` and ``IdentityLoss``. Questions and
  answers are short bags of words about two topics each ("rain", "tax" in the
  question; "umbrella", "accountant" in its answer), plus filler words; the
  two towers have separate word embeddings, so they must learn which question
  words go with which answer words. After every epoch a callback ranks each
  held-out question against every held-out answer by cosine and logs
  ``recall_at_1``. The held-out pairs are on topic pairs never seen together
  in training.
- ``"masked_lm"``: next-token prediction on padded counting sequences
  ("3 5 7 9 …", steps of 1 to 3 on a 12-hour clock) with
  ``build_masked_lm_model``, whose ``MaskedCrossEntropyLayer`` adds the loss
  with ``add_loss`` and reports ``perplexity`` and ``masked_accuracy``.

Each run's ``summary`` holds the held-out score before and after training
(recall@1; next-token accuracy) beside its chance level, and its ``rows`` the
first held-out questions with the answer ranked first, or the first held-out
sequences with the predicted next tokens.

Everything is generated from the run's seed (``core.rng``), nothing is
downloaded, and every size is capped.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np

from lossviz import registry, triplet
from lossviz._common import check_number
from lossviz.training import core

# topic: (its word in questions, its word in answers)
TOPICS = {
    "weather": ("rain", "umbrella"),
    "money": ("tax", "accountant"),
    "travel": ("visa", "passport"),
    "cooking": ("oven", "recipe"),
    "health": ("fever", "doctor"),
    "computers": ("laptop", "reboot"),
    "garden": ("weeds", "compost"),
    "pets": ("puppy", "vet"),
    "music": ("guitar", "tuner"),
    "cars": ("engine", "mechanic"),
    "sleep": ("insomnia", "bedtime"),
    "study": ("exam", "library"),
    "art": ("painting", "gallery"),
    "sport": ("football", "coach"),
    "home": ("landlord", "lease"),
    "phone": ("battery", "charger"),
}
QUESTION_FILLERS = ("how", "what", "why", "my", "the", "is", "do", "i")
ANSWER_FILLERS = ("try", "a", "the", "you", "should", "use", "it", "see")
TOPICS_PER_PAIR = 2
QA_MAX_LEN = 8

# Word 0 is padding (``Embedding(mask_zero=True)`` in the towers).
QA_VOCABULARY = tuple(
    dict.fromkeys(
        ("<pad>",)
        + tuple(w for pair in TOPICS.values() for w in pair)
        + QUESTION_FILLERS
        + ANSWER_FILLERS
    )
)
_QA_IDS = {word: i for i, word in enumerate(QA_VOCABULARY)}
TOPIC_NAMES = tuple(TOPICS)
TOPIC_PAIRS = tuple(itertools.combinations(range(len(TOPICS)), TOPICS_PER_PAIR))

# Counting sequences: tokens 1..CLOCK are the hours of a clock, 0 is padding.
CLOCK = 12
STEPS = (1, 2, 3)
LM_VOCAB_SIZE = CLOCK + 1
LM_MAX_LEN = 8
LM_MIN_LEN = 3

# The margin's range is the one the page's slider offers (the registry's).
_MARGIN = registry.get("cosine_triplet_loss").param("margin")
TRIPLET_PARAMS = {
    # name: (default, low, high, integer)
    "margin": (_MARGIN.default, _MARGIN.ui_range[0], _MARGIN.ui_range[1], False),
    "num_train": (512, 64, 4096, True),
    "num_answers": (32, 4, 64, True),
    "embed_dim": (16, 2, 64, True),
    "hard_share": (0.5, 0.0, 1.0, False),
}
MASKED_LM_PARAMS = {
    "num_train": (512, 64, 4096, True),
    "embed_dim": (16, 2, 64, True),
    "hidden_units": (32, 4, 128, True),
}
BATCH_SIZE = 64
NUM_EXAMPLES = 5
LM_HELDOUT = 256  # held-out sequences the masked LM's accuracy is measured on


def _check_params(params: dict, spec: dict) -> dict:
    """The variant's parameters with defaults filled in; ValueError names a bad one."""
    for name in params:
        if name not in spec:
            known = ", ".join(f"`{n}`" for n in spec)
            raise ValueError(f"Unknown parameter `{name}`; this variant takes {known}.")
    checked = {}
    for name, (default, low, high, integer) in spec.items():
        value = check_number(
            name, params.get(name, default), low=low, high=high, integer=integer
        )
        checked[name] = int(value) if integer else float(value)
    return checked


# ------------------------------------------------------------ retrieval toy


# Word id of each topic, [num_topics], in questions and in answers.
_QUESTION_WORDS = np.array([_QA_IDS[q] for q, _ in TOPICS.values()])
_ANSWER_WORDS = np.array([_QA_IDS[a] for _, a in TOPICS.values()])
_FILLERS = (
    np.array([_QA_IDS[w] for w in QUESTION_FILLERS]),
    np.array([_QA_IDS[w] for w in ANSWER_FILLERS]),
)
MAX_FILLERS = 4


def _bags(rng, topic_pairs, words, fillers):
    """Padded bags of words: the word of each topic and 1..MAX_FILLERS fillers.

    Each row is shuffled, then padded with 0 to ``QA_MAX_LEN``.
    """
    n = len(topic_pairs)
    topic_words = words[topic_pairs]
    filler_words = rng.choice(fillers, size=(n, MAX_FILLERS))
    num_fillers = rng.integers(1, MAX_FILLERS + 1, size=n)
    filler_words[np.arange(MAX_FILLERS)[None, :] >= num_fillers[:, None]] = 0
    bag = np.concatenate([topic_words, filler_words], axis=1)
    # Shuffle each row's words; padding (key 2) sorts last.
    keys = np.where(bag > 0, rng.random(bag.shape), 2.0)
    bag = np.take_along_axis(bag, np.argsort(keys, axis=1), axis=1)
    padding = np.zeros((n, QA_MAX_LEN - bag.shape[1]), bag.dtype)
    return np.concatenate([bag, padding], axis=1).astype(np.int32)


def qa_pairs(rng: np.random.Generator, topic_pairs) -> tuple[np.ndarray, np.ndarray]:
    """A question and its answer for each topic pair.

    Args:
      rng: the numpy generator to draw from.
      topic_pairs: int ``[n, TOPICS_PER_PAIR]`` topic indices.

    Returns:
      ``(questions, answers)``, int32 ``[n, QA_MAX_LEN]`` word ids, 0 = padding.
    """
    topic_pairs = np.asarray(topic_pairs, np.int64).reshape(-1, TOPICS_PER_PAIR)
    questions = _bags(rng, topic_pairs, _QUESTION_WORDS, _FILLERS[0])
    answers = _bags(rng, topic_pairs, _ANSWER_WORDS, _FILLERS[1])
    return questions, answers


def qa_dataset(
    seed: int, num_train: int = 512, num_answers: int = 32, hard_share: float = 0.5
) -> dict:
    """Training triplets and a held-out set of question/answer pairs.

    The held-out pairs are on ``num_answers`` distinct topic pairs that never
    occur together in training, so each held-out question has exactly one
    right answer among them. Each training triplet is a question, its answer
    and the answer of another training topic pair: for a share
    ``hard_share`` of them one sharing a topic with the question (a hard
    negative), else any other.

    Returns:
      A dict of int32 arrays: ``question``, ``positive``, ``negative``
      ``[num_train, QA_MAX_LEN]``; ``heldout_question``, ``heldout_answer``
      ``[num_answers, QA_MAX_LEN]``; ``heldout_topics``
      ``[num_answers, TOPICS_PER_PAIR]``.
    """
    rng = core.rng(seed, salt=1)
    pairs = np.array(TOPIC_PAIRS)
    order = rng.permutation(len(pairs))
    heldout, seen = pairs[order[:num_answers]], pairs[order[num_answers:]]
    chosen = rng.integers(len(seen), size=num_train)
    # The negative: any other seen pair, or (hard) one sharing a topic with it
    # when there is one.
    other_pair = ~np.eye(len(seen), dtype=bool)
    shares = (seen[:, None, :, None] == seen[None, :, None, :]).any(axis=(2, 3))
    shares &= other_pair
    hard = (rng.random(num_train) < hard_share) & shares[chosen].any(axis=1)
    allowed = np.where(hard[:, None], shares[chosen], other_pair[chosen])
    # One allowed pair per row, uniformly: the first whose running count
    # reaches a uniform draw times the row's total.
    counts = allowed.cumsum(axis=1)
    draw = rng.random((num_train, 1)) * counts[:, -1:]
    other = (counts <= draw).sum(axis=1)
    question, positive = qa_pairs(rng, seen[chosen])
    _, negative = qa_pairs(rng, seen[other])
    heldout_question, heldout_answer = qa_pairs(core.rng(seed, salt=2), heldout)
    return {
        "question": question,
        "positive": positive,
        "negative": negative,
        "heldout_question": heldout_question,
        "heldout_answer": heldout_answer,
        "heldout_topics": heldout.astype(np.int32),
    }


def decode(ids, vocabulary=QA_VOCABULARY) -> str:
    """Word ids as text, padding left out."""
    return " ".join(vocabulary[int(i)] for i in ids if int(i) != 0)


def retrieval_scores(question_encoder, answer_encoder, questions, answers):
    """``[num_questions, num_answers]`` cosine of every question with every answer.

    The encoders are called eagerly (no ``predict``, so nothing is traced) and
    the cosine is ``lossviz.triplet.cosine_similarity``, the one the loss uses.
    """
    q = question_encoder(questions, training=False)
    a = answer_encoder(answers, training=False)
    return np.asarray(triplet.cosine_similarity(q[:, None, :], a[None, :, :]))


def recall_at_1(scores) -> float:
    """Share of questions whose highest-scoring answer is their own (the diagonal)."""
    scores = np.asarray(scores)
    return float(np.mean(np.argmax(scores, axis=1) == np.arange(len(scores))))


class RecallAt1(keras.callbacks.Callback):
    """Logs ``recall_at_1`` of the inference encoders on held-out pairs.

    Also keeps the value before training in ``before``, and the last score
    matrix in ``scores``.
    """

    def __init__(self, question_encoder, answer_encoder, questions, answers):
        super().__init__()
        self.question_encoder = question_encoder
        self.answer_encoder = answer_encoder
        self.questions = questions
        self.answers = answers
        self.before = None
        self.scores = None

    def _score(self):
        self.scores = retrieval_scores(
            self.question_encoder, self.answer_encoder, self.questions, self.answers
        )
        return recall_at_1(self.scores)

    def on_train_begin(self, logs=None):
        self.before = self._score()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["recall_at_1"] = self._score()


def _run_triplet(ctx: core.RunContext) -> None:
    params = _check_params(ctx.params, TRIPLET_PARAMS)
    data = qa_dataset(
        ctx.seed, params["num_train"], params["num_answers"], params["hard_share"]
    )
    with ctx.strategy.scope():
        model, question_encoder, answer_encoder = triplet.build_triplet_models(
            len(QA_VOCABULARY),
            embed_dim=params["embed_dim"],
            max_len=QA_MAX_LEN,
            margin=params["margin"],
        )
        model.compile(
            optimizer=keras.optimizers.Adam(ctx.learning_rate),
            loss=triplet.IdentityLoss(),
            jit_compile=False,
        )
    recall = RecallAt1(
        question_encoder,
        answer_encoder,
        data["heldout_question"],
        data["heldout_answer"],
    )
    inputs = [data["question"], data["positive"], data["negative"]]
    # IdentityLoss ignores y_true, but fit needs one: fit(x, None) fails.
    model.fit(
        inputs,
        np.zeros(len(data["question"]), np.float32),
        batch_size=BATCH_SIZE,
        epochs=ctx.epochs,
        callbacks=[recall, *ctx.callbacks],
        verbose=0,
    )
    _describe_retrieval(ctx.result, data, recall)


def _describe_retrieval(result: core.RunResult, data: dict, recall: RecallAt1) -> None:
    """Held-out recall@1 before and after training, and the answer ranked
    first for the first held-out questions."""
    scores = recall.scores
    result.summary.update(
        {
            "held-out recall@1 before training": recall.before,
            "… after": recall_at_1(scores),
            "held-out answers": len(scores),
            "chance": 1.0 / len(scores),
        }
    )
    for i in range(min(NUM_EXAMPLES, len(scores))):
        best = int(np.argmax(scores[i]))
        result.rows.append(
            {
                "question": decode(data["heldout_question"][i]),
                "topics": " + ".join(TOPIC_NAMES[t] for t in data["heldout_topics"][i]),
                "ranked first": decode(data["heldout_answer"][best]),
                "right answer": decode(data["heldout_answer"][i]),
                "cos first": float(scores[i, best]),
                "cos right": float(scores[i, i]),
                "right?": best == i,
            }
        )


# ------------------------------------------------------------- masked LM


def counting_sequences(rng: np.random.Generator, num: int):
    """Padded next-token pairs of counting sequences on a ``CLOCK``-hour clock.

    Each sequence starts at a random hour and steps by one of ``STEPS``
    (wrapping past ``CLOCK``), with ``LM_MIN_LEN`` to ``LM_MAX_LEN`` tokens
    fed to the model; ``targets`` is ``tokens`` shifted by one. The first
    target of a row cannot be known (the step is not seen yet); every later
    one follows from the two tokens before it.

    Returns:
      ``(tokens, targets)``, int32 ``[num, LM_MAX_LEN]`` with 0 as padding.
    """
    starts = rng.integers(CLOCK, size=num)
    steps = rng.choice(STEPS, size=num)
    lengths = rng.integers(LM_MIN_LEN, LM_MAX_LEN + 1, size=num)
    positions = np.arange(LM_MAX_LEN + 1)
    hours = (starts[:, None] + steps[:, None] * positions) % CLOCK + 1
    real = positions[None, :-1] < lengths[:, None]
    tokens = np.where(real, hours[:, :-1], 0)
    targets = np.where(real, hours[:, 1:], 0)
    return tokens.astype(np.int32), targets.astype(np.int32)


def _run_masked_lm(ctx: core.RunContext) -> None:
    params = _check_params(ctx.params, MASKED_LM_PARAMS)
    data = core.rng(ctx.seed, salt=3)
    tokens, targets = counting_sequences(data, params["num_train"])
    with ctx.strategy.scope():
        model, inference_model = triplet.build_masked_lm_model(
            LM_VOCAB_SIZE,
            embed_dim=params["embed_dim"],
            hidden_units=params["hidden_units"],
            max_len=LM_MAX_LEN,
            pad_id=0,
        )
        model.compile(
            optimizer=keras.optimizers.Adam(ctx.learning_rate), jit_compile=False
        )
    held_tokens, held_targets = counting_sequences(
        core.rng(ctx.seed, salt=4), LM_HELDOUT
    )
    before = next_token_accuracy(_predict(inference_model, held_tokens), held_targets)
    # The targets are an input: the layer adds the loss, so fit takes no y.
    model.fit(
        [tokens, targets],
        batch_size=BATCH_SIZE,
        epochs=ctx.epochs,
        callbacks=list(ctx.callbacks),
        verbose=0,
    )
    predicted = _predict(inference_model, held_tokens)
    real = held_targets != 0
    ctx.result.summary.update(
        {
            "held-out next-token accuracy before training": before,
            "… after": next_token_accuracy(predicted, held_targets),
            "held-out tokens": int(real.sum()),
            "chance": 1.0 / CLOCK,
        }
    )
    hours = ("<pad>",) + tuple(str(h) for h in range(1, CLOCK + 1))
    for row_tokens, row_targets, row_predicted, row_real in zip(
        held_tokens[:NUM_EXAMPLES],
        held_targets[:NUM_EXAMPLES],
        predicted[:NUM_EXAMPLES],
        real[:NUM_EXAMPLES],
        strict=True,
    ):
        ctx.result.rows.append(
            {
                "input": decode(row_tokens, hours),
                "next tokens": decode(row_targets, hours),
                "predicted": " ".join(hours[p] for p in row_predicted[row_real]),
                "accuracy": next_token_accuracy(row_predicted, row_targets),
            }
        )


def _predict(inference_model, tokens) -> np.ndarray:
    """The argmax next token at every position, called eagerly (no trace)."""
    return np.argmax(inference_model(tokens, training=False), axis=-1)


def next_token_accuracy(predicted, targets) -> float:
    """Share of the non-padding ``targets`` equal to ``predicted``."""
    real = np.asarray(targets) != 0
    return float(np.mean(np.asarray(predicted)[real] == np.asarray(targets)[real]))


def _run(ctx: core.RunContext) -> None:
    """Runs the ``"triplet"`` or ``"masked_lm"`` variant (see the module doc)."""
    if ctx.variant == "triplet":
        _run_triplet(ctx)
    else:
        _run_masked_lm(ctx)


TASK = core.register_task(
    core.Task(
        name="triplet",
        title="Loss as a layer: question/answer retrieval and a masked LM",
        variants=("triplet", "masked_lm"),
        run=_run,
        metrics=("loss", "recall_at_1", "perplexity", "masked_accuracy"),
    )
)
