"""pubctl: publish fine-tuned language models on the Hugging Face Hub honestly and reproducibly."""

__version__ = "0.1.0"
