"""The fixed registry of BibTeX entries a card may cite.

A method's SPEC names the keys that apply (``MethodSpec.citations``); the card
prints exactly these entries. They are typed here once, checked against the
papers' arXiv pages and journal records, so no card ever invents or garbles a
reference. Keys are stable: configs and templates refer to them.

Titles are quote-delimited ("{KTO}: ...") rather than brace-delimited
({{KTO}: ...}): BibTeX reads both the same, and a card's gate refuses ``{{`` as
leftover template syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.registry import Registry


@dataclass(frozen=True)
class Citation:
    key: str
    short: str
    """Author-year form shown in running text, e.g. "Rafailov et al., 2023"."""
    title: str
    url: str
    bibtex: str


CITATIONS: Registry[Citation] = Registry("citation key")
for _citation in (
    Citation(
        key="dpo",
        short="Rafailov et al., 2023",
        title="Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        url="https://arxiv.org/abs/2305.18290",
        bibtex="""@inproceedings{rafailov2023direct,
  title     = "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
  author    = {Rafailov, Rafael and Sharma, Archit and Mitchell, Eric and Manning, Christopher D. and
               Ermon, Stefano and Finn, Chelsea},
  booktitle = "Advances in Neural Information Processing Systems",
  volume    = {36},
  year      = {2023},
  eprint    = {2305.18290},
  archivePrefix = {arXiv}
}""",
    ),
    Citation(
        key="ipo",
        short="Azar et al., 2024",
        title="A General Theoretical Paradigm to Understand Learning from Human Preferences",
        url="https://arxiv.org/abs/2310.12036",
        bibtex="""@inproceedings{azar2024general,
  title     = "A General Theoretical Paradigm to Understand Learning from Human Preferences",
  author    = {Azar, Mohammad Gheshlaghi and Guo, Zhaohan Daniel and Piot, Bilal and Munos, Remi and
               Rowland, Mark and Valko, Michal and Calandriello, Daniele},
  booktitle = "Proceedings of The 27th International Conference on Artificial Intelligence and Statistics",
  year      = {2024},
  eprint    = {2310.12036},
  archivePrefix = {arXiv}
}""",
    ),
    Citation(
        key="kto",
        short="Ethayarajh et al., 2024",
        title="KTO: Model Alignment as Prospect Theoretic Optimization",
        url="https://arxiv.org/abs/2402.01306",
        bibtex="""@inproceedings{ethayarajh2024kto,
  title     = "{KTO}: Model Alignment as Prospect Theoretic Optimization",
  author    = {Ethayarajh, Kawin and Xu, Winnie and Muennighoff, Niklas and Jurafsky, Dan and Kiela, Douwe},
  booktitle = "Proceedings of the 41st International Conference on Machine Learning",
  year      = {2024},
  eprint    = {2402.01306},
  archivePrefix = {arXiv}
}""",
    ),
    Citation(
        key="cpo",
        short="Xu et al., 2024",
        title="Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in Machine Translation",
        url="https://arxiv.org/abs/2401.08417",
        bibtex="""@inproceedings{xu2024contrastive,
  title     = "Contrastive Preference Optimization: Pushing the Boundaries of {LLM} Performance in Machine Translation",
  author    = {Xu, Haoran and Sharaf, Amr and Chen, Yunmo and Tan, Weiting and Shen, Lingfeng and
               Van Durme, Benjamin and Murray, Kenton and Kim, Young Jin},
  booktitle = "Proceedings of the 41st International Conference on Machine Learning",
  year      = {2024},
  eprint    = {2401.08417},
  archivePrefix = {arXiv}
}""",
    ),
    Citation(
        key="simpo",
        short="Meng et al., 2024",
        title="SimPO: Simple Preference Optimization with a Reference-Free Reward",
        url="https://arxiv.org/abs/2405.14734",
        bibtex="""@inproceedings{meng2024simpo,
  title     = "{SimPO}: Simple Preference Optimization with a Reference-Free Reward",
  author    = {Meng, Yu and Xia, Mengzhou and Chen, Danqi},
  booktitle = "Advances in Neural Information Processing Systems",
  volume    = {37},
  year      = {2024},
  eprint    = {2405.14734},
  archivePrefix = {arXiv}
}""",
    ),
    Citation(
        key="orpo",
        short="Hong et al., 2024",
        title="ORPO: Monolithic Preference Optimization without Reference Model",
        url="https://arxiv.org/abs/2403.07691",
        bibtex="""@inproceedings{hong2024orpo,
  title     = "{ORPO}: Monolithic Preference Optimization without Reference Model",
  author    = {Hong, Jiwoo and Lee, Noah and Thorne, James},
  booktitle = "Proceedings of the 2024 Conference on Empirical Methods in Natural Language Processing",
  year      = {2024},
  eprint    = {2403.07691},
  archivePrefix = {arXiv}
}""",
    ),
    Citation(
        key="bco",
        short="Jung et al., 2024",
        title="Binary Classifier Optimization for Large Language Model Alignment",
        url="https://arxiv.org/abs/2404.04656",
        bibtex="""@article{jung2024binary,
  title   = "Binary Classifier Optimization for Large Language Model Alignment",
  author  = {Jung, Seungjae and Han, Gunsoo and Nam, Daniel Wontae and On, Kyoung-Woon},
  journal = {arXiv preprint arXiv:2404.04656},
  year    = {2024}
}""",
    ),
    Citation(
        key="tversky_kahneman_1992",
        short="Tversky & Kahneman, 1992",
        title="Advances in Prospect Theory: Cumulative Representation of Uncertainty",
        url="https://doi.org/10.1007/BF00122574",
        bibtex="""@article{tversky1992advances,
  title   = "Advances in Prospect Theory: Cumulative Representation of Uncertainty",
  author  = {Tversky, Amos and Kahneman, Daniel},
  journal = {Journal of Risk and Uncertainty},
  volume  = {5},
  number  = {4},
  pages   = {297--323},
  year    = {1992},
  doi     = {10.1007/BF00122574}
}""",
    ),
    Citation(
        key="lora",
        short="Hu et al., 2022",
        title="LoRA: Low-Rank Adaptation of Large Language Models",
        url="https://arxiv.org/abs/2106.09685",
        bibtex="""@inproceedings{hu2022lora,
  title     = "{LoRA}: Low-Rank Adaptation of Large Language Models",
  author    = {Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan and Li, Yuanzhi and
               Wang, Shean and Wang, Lu and Chen, Weizhu},
  booktitle = "International Conference on Learning Representations",
  year      = {2022},
  eprint    = {2106.09685},
  archivePrefix = {arXiv}
}""",
    ),
    # The two tools pubctl runs, cited as their authors ask: TRL's model-card template
    # (trl/templates/lm_model_card.md) and lm-eval's README ("Cite as"), which names the Zenodo record.
    Citation(
        key="trl",
        short="von Werra et al., 2020",
        title="TRL: Transformers Reinforcement Learning",
        url="https://github.com/huggingface/trl",
        bibtex="""@software{vonwerra2020trl,
  title   = "{TRL}: Transformers Reinforcement Learning",
  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan and
             Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, Quentin},
  license = {Apache-2.0},
  url     = {https://github.com/huggingface/trl},
  year    = {2020}
}""",
    ),
    Citation(
        key="lm_eval",
        short="Gao et al., 2024",
        title="The Language Model Evaluation Harness",
        url="https://zenodo.org/records/12608602",
        bibtex="""@misc{eval-harness,
  author    = {Gao, Leo and Tow, Jonathan and Abbasi, Baber and Biderman, Stella and Black, Sid and DiPofi, Anthony and
               Foster, Charles and Golding, Laurence and Hsu, Jeffrey and Le Noac'h, Alain and Li, Haonan and
               McDonell, Kyle and Muennighoff, Niklas and Ociepa, Chris and Phang, Jason and Reynolds, Laria and
               Schoelkopf, Hailey and Skowron, Aviya and Sutawika, Lintang and Tang, Eric and Thite, Anish and
               Wang, Ben and Wang, Kevin and Zou, Andy},
  title     = {The Language Model Evaluation Harness},
  month     = 07,
  year      = 2024,
  publisher = {Zenodo},
  version   = {v0.4.3},
  doi       = {10.5281/zenodo.12608602},
  url       = {https://zenodo.org/records/12608602}
}""",
    ),
):
    CITATIONS.add(_citation.key, _citation)


def tool_citations(trained: bool, harness: str | None) -> tuple[str, ...]:
    """The tools' own entries: TRL for a model pubctl trained (every method runs a TRL trainer), lm-eval for
    scores it computed."""
    return (("trl",) if trained else ()) + (("lm_eval",) if harness == "lm-eval" else ())


def citations_for(keys: tuple[str, ...] | list[str]) -> list[Citation]:
    """The entries for ``keys`` in order; an unknown key is a clear error (a SPEC typo, never a blank)."""
    return [CITATIONS.get_or_fail(key, source="the card's BibTeX registry (pipeline/citations.py)") for key in keys]
