"""The Hub dataset schemas pubctl recognises: each written to a file in its exact schema, normalised, fed to TRL.

Every fixture below copies one Hub dataset's columns, nesting and types (message
dicts keyed content-then-role where the Hub stores them so, float scores, bool
labels); the rows are short and made up. No model is trained: TRL's own
tokenisation of the normalised rows is what would fail first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.data_schemas import SCHEMAS, parse_hh_dialogue
from pipeline.errors import UsageError
from pipeline.layout import Layout
from pipeline.training_data import PreparedData, prepare_data


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_path))


@pytest.fixture
def prepare(make_config: Callable[..., str], project: Path, tokenizer) -> Callable[..., PreparedData]:
    """prepare_data on ``rows`` written to FILE in the project, with the demo config and ``overrides``."""

    def run(file: str, rows: list[dict[str, Any]], method: str, **data: Any) -> PreparedData:
        from datasets import Dataset

        path = project / file
        if file.endswith(".parquet"):
            Dataset.from_list(rows).to_parquet(str(path))
        else:
            Dataset.from_list(rows).to_json(str(path), force_ascii=False)  # JSON lines
        overrides = {
            # the demo's method section is replaced, not merged: its beta is not a parameter of every method
            "method": {"beta": None, "name": method},
            "data": {"train": file, "eval_fraction": None, **data},
            "training": {"max_length": 1024, "max_prompt_length": None},
        }
        name = make_config("schema", overrides)
        return prepare_data(load_config(name, project), Layout.for_release(name, project), tokenizer)

    return run


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def hub_message(role: str, content: str) -> dict[str, str]:
    """A message as the Hub's parquet files store it: content first, then role."""
    return {"content": content, "role": role}


def dpo_tokenize(dataset: Any, tokenizer: Any, tmp_path: Path) -> Any:
    """TRL 1.16's DPOTrainer dataset preparation (prompt extraction, EOS, its tokenize_fn) on ``dataset``."""
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=1024, bf16=False, report_to=[])
    # the preparation reads only the tokenizer from the trainer; a full trainer would load a model
    trainer = SimpleNamespace(_tokenizer=tokenizer)
    return DPOTrainer._prepare_dataset(trainer, dataset, tokenizer, args, "train")


def kto_tokenize(dataset: Any, tokenizer: Any, tmp_path: Path) -> Any:
    from trl import KTOConfig, KTOTrainer

    args = KTOConfig(output_dir=str(tmp_path / "kto"), max_length=1024, bf16=False, report_to=[])
    # what the preparation reads from the trainer (KL completions on, as KTOTrainer sets them by default)
    trainer = SimpleNamespace(_tokenizer=tokenizer, calculate_KL=True, desirable_weight=1.0, undesirable_weight=1.0)
    return KTOTrainer._prepare_dataset(trainer, dataset, tokenizer, args, "train")


# ------------------------------------------------------------------- 1. H4 ultrafeedback
H4_ROWS = [
    (
        "How do I boil an egg?",
        "Put it in boiling water for nine minutes, then cool it in cold water.",
        "Eggs are laid by hens.",
        8.5,
        3.0,
    ),
    ("What is the capital of Peru?", "Lima is the capital of Peru.", "Peru has no capital.", 9.0, 1.0),
    ("Name a prime number above 10.", "11 is prime.", "12 is prime.", 7.5, 2.5),
    ("Translate 'thank you' to French.", "Merci.", "Danke.", 10.0, 4.0),
]


def h4_rows() -> list[dict[str, Any]]:
    rows = []
    for index, (prompt, good, bad, score_chosen, score_rejected) in enumerate(H4_ROWS):
        chosen = [hub_message("user", prompt), hub_message("assistant", good)]
        rejected = [hub_message("user", prompt), hub_message("assistant", bad)]
        rows.append(
            {
                "prompt": prompt,
                "prompt_id": f"{index:064x}",
                "chosen": chosen,
                "rejected": rejected,
                "messages": chosen,
                "score_chosen": score_chosen,
                "score_rejected": score_rejected,
            }
        )
    return rows


def test_h4_ultrafeedback_prompt_becomes_the_shared_user_turn(prepare, tokenizer, tmp_path: Path) -> None:
    from trl import apply_chat_template, is_conversational

    data = prepare("ultrafeedback.parquet", h4_rows(), "dpo", split="train_prefs")
    assert data.schema == "text_prompt_with_conversations"
    assert data.source_format == "paired" and data.conversational
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    for row, (prompt, good, bad, _, _) in zip(data.train, H4_ROWS, strict=True):
        assert row["prompt"] == [user(prompt)]
        assert row["chosen"] == [assistant(good)]
        assert row["rejected"] == [assistant(bad)]
        assert is_conversational(row)
    rendered = apply_chat_template(data.train[0], tokenizer)
    assert rendered["prompt"] == f"<|im_start|>user\n{H4_ROWS[0][0]}<|im_end|>\n<|im_start|>assistant\n"
    assert rendered["chosen"].startswith(H4_ROWS[0][1])
    tokenized = dpo_tokenize(data.train, tokenizer, tmp_path)
    first = tokenized[0]
    assert tokenizer.decode(first["prompt_ids"]).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(first["chosen_ids"]).startswith(H4_ROWS[0][1])
    assert len(tokenized) == len(H4_ROWS)


def test_h4_ultrafeedback_unchanged_would_crash_trl(tokenizer, tmp_path: Path) -> None:
    """The failure this module exists for: TRL reads the text prompt beside conversations as standard rows."""
    from datasets import Dataset

    raw = Dataset.from_list(h4_rows()).select_columns(["prompt", "chosen", "rejected"])
    with pytest.raises((AttributeError, TypeError)):
        dpo_tokenize(raw, tokenizer, tmp_path)


def test_h4_ultrafeedback_for_kto_and_sft(prepare) -> None:
    kto = prepare("ultrafeedback.parquet", h4_rows(), "kto")
    assert kto.train.column_names == ["prompt", "completion", "label"]
    assert len(kto.train) == 2 * len(H4_ROWS) and kto.conversational
    assert all(row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant" for row in kto.train)
    sft = prepare("ultrafeedback.parquet", h4_rows(), "sft")
    assert sft.train.column_names == ["prompt", "completion"]
    assert sft.train[1]["completion"] == [assistant(H4_ROWS[1][1])]


def test_a_text_prompt_beside_answer_only_conversations_becomes_the_user_turn(prepare) -> None:
    rows = [
        {"prompt": prompt, "chosen": [hub_message("assistant", good)], "rejected": [hub_message("assistant", bad)]}
        for prompt, good, bad, _, _ in H4_ROWS
    ]
    data = prepare("answers.parquet", rows, "dpo")
    assert data.train[0]["prompt"] == [user(H4_ROWS[0][0])]
    assert data.train[0]["chosen"] == [assistant(H4_ROWS[0][1])]


# -------------------------------------------------------------- 2. trl-lib ultrafeedback
def test_trl_lib_ultrafeedback_implicit_prompt_is_extracted(prepare) -> None:
    from trl import is_conversational

    rows = [
        {
            "chosen": [hub_message("user", prompt), hub_message("assistant", good)],
            "rejected": [hub_message("user", prompt), hub_message("assistant", bad)],
            "score_chosen": score_chosen,
            "score_rejected": score_rejected,
        }
        for prompt, good, bad, score_chosen, score_rejected in H4_ROWS
    ]
    data = prepare("trl_uf.parquet", rows, "dpo")
    assert data.schema == "conversations_with_implicit_prompt"
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    assert data.train[2]["prompt"] == [user(H4_ROWS[2][0])]
    assert data.train[2]["chosen"] == [assistant(H4_ROWS[2][1])]
    assert data.train[2]["rejected"] == [assistant(H4_ROWS[2][2])]
    assert is_conversational(data.train[0])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"chosen": [], "rejected": [hub_message("user", "Hi"), hub_message("assistant", "Yo")]}, "empty 'chosen'"),
        (
            {
                "chosen": [hub_message("user", "Hi")],
                "rejected": [hub_message("user", "Hello"), hub_message("assistant", "Yo")],
            },
            "no prompt",
        ),
    ],
    ids=["empty-answer", "no-shared-turn"],
)
def test_implicit_prompt_rows_that_cannot_be_split_are_named(prepare, bad: dict[str, Any], message: str) -> None:
    rows = [
        {
            "chosen": [hub_message("user", prompt), hub_message("assistant", good)],
            "rejected": [hub_message("user", prompt), hub_message("assistant", bad_answer)],
        }
        for prompt, good, bad_answer, _, _ in H4_ROWS
    ]
    rows.insert(1, bad)
    with pytest.raises(UsageError, match=f"row 1 of the training split of bad.parquet has (an )?{message}"):
        prepare("bad.parquet", rows, "dpo")


# ---------------------------------------------------------------------------- 3. hh-rlhf
HH_PROMPT = (
    "\n\nHuman: What are some good vegetables to grow in a small garden?"
    "\n\nAssistant: Tomatoes, lettuce and herbs grow well in small spaces."
    "\n\nHuman: Which of those needs the most sun?"
)
HH_ROWS = [
    (
        HH_PROMPT + "\n\nAssistant: Tomatoes need the most sun: six to eight hours a day.",
        HH_PROMPT + "\n\nAssistant: I don't know.",
    ),
    (
        "\n\nHuman: How do I make my coffee less bitter?\n\nAssistant: Use slightly cooler water and a coarser grind.",
        "\n\nHuman: How do I make my coffee less bitter?\n\nAssistant: Add more coffee.",
    ),
    (
        "\n\nHuman: Can you recommend a book about space?\n\nAssistant: Cosmos by Carl Sagan is a classic.",
        "\n\nHuman: Can you recommend a book about space?\n\nAssistant: Books are made of paper.",
    ),
]


def test_hh_rlhf_dialogues_become_conversations(prepare, tokenizer, tmp_path: Path) -> None:
    from trl import apply_chat_template, is_conversational

    rows = [{"chosen": chosen, "rejected": rejected} for chosen, rejected in HH_ROWS]
    data = prepare("hh.jsonl", rows, "dpo")
    assert data.schema == "hh_rlhf" and data.conversational
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    assert data.train[0]["prompt"] == [
        user("What are some good vegetables to grow in a small garden?"),
        assistant("Tomatoes, lettuce and herbs grow well in small spaces."),
        user("Which of those needs the most sun?"),
    ]
    assert data.train[0]["chosen"] == [assistant("Tomatoes need the most sun: six to eight hours a day.")]
    assert data.train[0]["rejected"] == [assistant("I don't know.")]
    assert data.train[1]["prompt"] == [user("How do I make my coffee less bitter?")]
    assert all(is_conversational(row) for row in data.train)
    rendered = apply_chat_template(data.train[0], tokenizer)
    assert rendered["prompt"].count("<|im_start|>user") == 2
    assert rendered["rejected"].startswith("I don't know.")
    tokenized = dpo_tokenize(data.train, tokenizer, tmp_path)
    assert tokenizer.decode(tokenized[1]["chosen_ids"]).startswith("Use slightly cooler water")


def test_hh_rlhf_row_without_turns_is_named(prepare) -> None:
    rows = [{"chosen": chosen, "rejected": rejected} for chosen, rejected in HH_ROWS]
    rows.insert(2, {"chosen": "Tomatoes need sun.", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello."})
    with pytest.raises(UsageError, match=r"row 2 of the training split of hh.jsonl is not a Human/Assistant") as err:
        prepare("hh.jsonl", rows, "dpo")
    assert "'chosen' text" in str(err.value) and "'Tomatoes need sun.'" in str(err.value)


def test_hh_dialogue_parser() -> None:
    assert parse_hh_dialogue("\n\nHuman: Hi there\n\nAssistant: Hello!") == [user("Hi there"), assistant("Hello!")]
    assert parse_hh_dialogue("Human: Hi\n\nAssistant:") == [user("Hi"), assistant("")]
    assert parse_hh_dialogue("Just some text.") is None
    assert parse_hh_dialogue("Preamble\n\nHuman: Hi\n\nAssistant: Yo") is None
    assert parse_hh_dialogue("\n\nHuman: only a question") is None


# ------------------------------------------------------------------- 4. argilla dpo-mix-7k
def test_argilla_dpo_mix_keeps_the_system_turn_in_the_prompt(prepare) -> None:
    system = hub_message("system", "You are a concise assistant.")
    rows = [
        {
            "dataset": "argilla/distilabel-capybara-dpo-7k-binarized",
            "chosen": [system, hub_message("user", "Sum 2 and 3."), hub_message("assistant", "5")],
            "rejected": [system, hub_message("user", "Sum 2 and 3."), hub_message("assistant", "23")],
            "chosen_rating": 5.0,
            "rejected_rating": 2.0,
        },
        {
            "dataset": "argilla/distilabel-intel-orca-dpo-pairs",
            "chosen": [hub_message("user", "Is ice cold?"), hub_message("assistant", "Yes, ice is frozen water.")],
            "rejected": [hub_message("user", "Is ice cold?"), hub_message("assistant", "Ice is hot.")],
            "chosen_rating": 4.5,
            "rejected_rating": 1.5,
        },
        {
            "dataset": "argilla/ultrafeedback-binarized-preferences-cleaned",
            "chosen": [hub_message("user", "Spell 'cat'."), hub_message("assistant", "C-A-T")],
            "rejected": [hub_message("user", "Spell 'cat'."), hub_message("assistant", "K-A-T")],
            "chosen_rating": 5.0,
            "rejected_rating": 3.0,
        },
    ]
    data = prepare("dpo_mix.parquet", rows, "dpo")
    assert data.schema == "conversations_with_implicit_prompt"
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    assert data.train[0]["prompt"] == [
        {"role": "system", "content": "You are a concise assistant."},
        user("Sum 2 and 3."),
    ]
    assert data.train[0]["chosen"] == [assistant("5")] and data.train[0]["rejected"] == [assistant("23")]
    assert data.train[1]["prompt"] == [user("Is ice cold?")]


# ------------------------------------------------------------------- 5. Intel orca_dpo_pairs
ORCA_ROWS = [
    {
        "system": "",
        "question": "What is 7 times 6?",
        "chosen": "7 times 6 is 42.",
        "rejected": "7 times 6 is 36.",
    },
    {
        "system": "You are an AI assistant. Answer step by step.",
        "question": "Is a whale a fish?",
        "chosen": "No. Whales breathe air and feed their young milk, so they are mammals.",
        "rejected": "Yes, whales live in the sea.",
    },
    {
        "system": "You are a helpful assistant.",
        "question": "Give a synonym of 'happy'.",
        "chosen": "Joyful.",
        "rejected": "Sad.",
    },
]


def test_orca_system_column_becomes_a_system_message(prepare, tokenizer) -> None:
    from trl import apply_chat_template, is_conversational

    data = prepare("orca.parquet", ORCA_ROWS, "dpo", columns={"prompt": "question", "system": "system"})
    assert data.schema == "system_column" and data.conversational
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    # an empty system value adds no system turn
    assert data.train[0]["prompt"] == [user("What is 7 times 6?")]
    assert data.train[1]["prompt"] == [
        {"role": "system", "content": "You are an AI assistant. Answer step by step."},
        user("Is a whale a fish?"),
    ]
    assert data.train[1]["chosen"] == [assistant(ORCA_ROWS[1]["chosen"])]
    assert data.train[1]["rejected"] == [assistant("Yes, whales live in the sea.")]
    assert all(is_conversational(row) for row in data.train)
    assert apply_chat_template(data.train[2], tokenizer)["prompt"].startswith("<|im_start|>system\nYou are a helpful")


def test_orca_without_the_mapping_names_it(prepare) -> None:
    with pytest.raises(UsageError) as err:
        prepare("orca.parquet", ORCA_ROWS, "dpo")
    message = str(err.value)
    assert "This mapping would fix it: data.columns: {prompt: question, system: system}." in message
    assert "'question'" in message and "['chosen', 'question', 'rejected', 'system']" in message


def test_orca_with_the_prompt_mapping_only_stays_plain_text(prepare) -> None:
    data = prepare("orca.parquet", ORCA_ROWS, "dpo", columns={"prompt": "question"})
    assert data.schema == "trl_standard" and not data.conversational
    assert data.train[1]["prompt"] == "Is a whale a fish?"


def test_a_system_mapping_to_a_missing_column_is_refused(prepare) -> None:
    with pytest.raises(UsageError, match=r"data.columns.system: orca.parquet has no column 'sys'"):
        prepare("orca.parquet", ORCA_ROWS, "dpo", columns={"prompt": "question", "system": "sys"})


# -------------------------------------------------------------- 6. 2A2I/Aya-Command.R-DPO
def test_aya_arabic_string_pairs_drop_extra_columns(prepare) -> None:
    # Extra bookkeeping columns (illustrative names) must not reach the trainer.
    rows = [
        {
            "id": index,
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
            "language": "arb",
            "script": "Arab",
        }
        for index, (prompt, chosen, rejected) in enumerate(
            [
                ("ما هي عاصمة مصر؟", "عاصمة مصر هي القاهرة.", "مصر بلد كبير."),
                ("كم عدد أيام الأسبوع؟", "في الأسبوع سبعة أيام.", "الأسبوع طويل."),
                ("ما لون السماء؟", "السماء زرقاء في النهار.", "لا أعرف."),
            ]
        )
    ]
    data = prepare("aya.parquet", rows, "cpo")
    assert data.schema == "trl_standard" and not data.conversational
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    assert data.train[0] == {
        "prompt": "ما هي عاصمة مصر؟",
        "chosen": "عاصمة مصر هي القاهرة.",
        "rejected": "مصر بلد كبير.",
    }


# --------------------------------------------------------------------- 7. trl-lib/kto-mix-14k
def test_kto_mix_unpaired_conversations(prepare, tokenizer, tmp_path: Path) -> None:
    from trl import is_conversational

    rows = [
        {
            "prompt": [hub_message("user", "What is the boiling point of water at sea level?")],
            "completion": [hub_message("assistant", "100 degrees Celsius.")],
            "label": True,
        },
        {
            "prompt": [hub_message("user", "What is the boiling point of water at sea level?")],
            "completion": [hub_message("assistant", "It depends on the kettle.")],
            "label": False,
        },
        {
            "prompt": [hub_message("user", "Write a haiku about rain.")],
            "completion": [
                hub_message("assistant", "Soft rain on the roof / the garden drinks slowly / clouds move on")
            ],
            "label": True,
        },
        {
            "prompt": [hub_message("user", "Who wrote Hamlet?")],
            "completion": [hub_message("assistant", "Charles Dickens.")],
            "label": False,
        },
    ]
    data = prepare("kto_mix.parquet", rows, "kto")
    assert data.schema == "trl_standard" and data.source_format == "unpaired"
    assert data.train.column_names == ["prompt", "completion", "label"]
    assert data.train[0]["prompt"] == [user("What is the boiling point of water at sea level?")]
    assert data.train[0]["completion"] == [assistant("100 degrees Celsius.")]
    assert data.train["label"] == [True, False, True, False]
    assert is_conversational(data.train[0])
    tokenized = kto_tokenize(data.train, tokenizer, tmp_path)
    assert len(tokenized) == 4 and "completion_ids" in tokenized.column_names


# ------------------------------------------------------------------ 8. SFT messages column
NO_ROBOTS_ROWS = [
    {
        "prompt": "Write a two-line poem about tea.",
        "prompt_id": "a" * 64,
        "messages": [
            hub_message("user", "Write a two-line poem about tea."),
            hub_message("assistant", "Steam curls from the cup,\nthe morning slowly wakes up."),
        ],
        "category": "Generation",
    },
    {
        "prompt": "Summarise: The meeting moved to Friday.",
        "prompt_id": "b" * 64,
        "messages": [
            hub_message("system", "You summarise text in one sentence."),
            hub_message("user", "Summarise: The meeting moved to Friday."),
            hub_message("assistant", "The meeting is now on Friday."),
        ],
        "category": "Summarize",
    },
    {
        "prompt": "What is 2 + 2?",
        "prompt_id": "c" * 64,
        "messages": [hub_message("user", "What is 2 + 2?"), hub_message("assistant", "4")],
        "category": "Open QA",
    },
]


def test_messages_column_trains_sft(prepare, tokenizer) -> None:
    from trl import apply_chat_template, is_conversational

    data = prepare("no_robots.parquet", NO_ROBOTS_ROWS, "sft")
    assert data.schema == "messages" and data.source_format == "text" and data.conversational
    assert data.train.column_names == ["messages"]
    assert data.train[2]["messages"] == [user("What is 2 + 2?"), assistant("4")]
    assert is_conversational(data.train[1])
    text = apply_chat_template(data.train[1], tokenizer)["text"]
    assert text.startswith("<|im_start|>system\nYou summarise") and text.endswith("<|im_end|>\n")


def test_a_messages_column_under_another_name_is_mapped(prepare) -> None:
    rows = [{"dialog": row["messages"]} for row in NO_ROBOTS_ROWS]
    data = prepare("dialogs.jsonl", rows, "sft", columns={"messages": "dialog"})
    assert data.schema == "messages" and data.train.column_names == ["messages"]


def test_messages_column_for_a_preference_method_says_what_is_needed(prepare) -> None:
    with pytest.raises(UsageError, match="only method 'sft' trains on; method 'dpo' needs paired rows"):
        prepare("no_robots.parquet", NO_ROBOTS_ROWS, "dpo")


# ----------------------------------------------------------------------- unmappable data
@pytest.mark.parametrize(
    ("rows", "method", "mapping"),
    [
        (
            # lvwerra/stack-exchange-paired
            [
                {
                    "qid": i,
                    "question": f"How do I reverse a list in Python ({i})?",
                    "date": "2020/01/01",
                    "metadata": ["https://stackoverflow.com/q/1"],
                    "response_j": "Use reversed(xs) or xs[::-1].",
                    "response_k": "You cannot.",
                }
                for i in range(3)
            ],
            "dpo",
            "data.columns: {prompt: question, chosen: response_j, rejected: response_k}",
        ),
        (
            # alpaca-style instruction data
            [{"instruction": f"Name a colour ({i}).", "input": "", "output": "Blue."} for i in range(3)],
            "sft",
            "data.columns: {prompt: instruction, completion: output}",
        ),
    ],
    ids=["stack-exchange-paired", "alpaca"],
)
def test_unmappable_schema_suggests_the_mapping(prepare, rows, method: str, mapping: str) -> None:
    with pytest.raises(UsageError, match="cannot tell the format") as err:
        prepare("other.parquet", rows, method)
    message = str(err.value)
    assert f"This mapping would fix it: {mapping}." in message
    assert str(sorted(rows[0])) in message
    assert "\n" not in message


def test_unguessable_columns_get_a_template(prepare) -> None:
    rows = [{"q": "Why?", "a1": "Because.", "a2": "No."}] * 3
    with pytest.raises(UsageError, match=r"data.columns: \{prompt: <prompt column>, chosen: <preferred answer"):
        prepare("other.parquet", rows, "dpo")


def test_strings_beside_conversations_are_refused_before_trl(prepare) -> None:
    rows = [{"prompt": "Hi?", "chosen": [hub_message("assistant", "Hello.")], "rejected": "Go away."}] * 3
    with pytest.raises(UsageError, match="'chosen' holds conversations, 'rejected' holds strings"):
        prepare("mixed.parquet", rows, "dpo")


def test_the_suggested_mapping_works(prepare) -> None:
    rows = [{"question": f"Q{i}?", "response_j": "Good.", "response_k": "Bad."} for i in range(3)]
    data = prepare(
        "se.parquet", rows, "dpo", columns={"prompt": "question", "chosen": "response_j", "rejected": "response_k"}
    )
    assert data.train.column_names == ["prompt", "chosen", "rejected"] and data.schema == "trl_standard"


def test_every_adapter_names_the_hub_datasets_it_was_written_for() -> None:
    assert len({adapter.name for adapter in SCHEMAS}) == len(SCHEMAS)
    assert all(adapter.written_for and all("/" in name for name in adapter.written_for) for adapter in SCHEMAS)
