"""The SFT stage: LIMA's fine-tuning recipe on transformers' Trainer (accelerate for DDP/FSDP, peft for LoRA)."""
