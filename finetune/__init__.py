"""supportserve fine-tuning: support transcripts in, gated LoRA adapters out."""
