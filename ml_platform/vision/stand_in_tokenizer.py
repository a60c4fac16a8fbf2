"""A tokenizer built in code, for zero-shot text towers with random weights when the model's
own tokenizer files cannot be had (no hub, nothing in the cache): the offline demo.

It is byte-level BPE with no merges: every byte of the lower-cased text is one token (ids
0-255), framed by start and end tokens at the top of the text tower's vocabulary, where
CLIP keeps them. It makes valid input for the towers and nothing more; the model using it
always runs on random weights and says `weights=random`.
"""

from __future__ import annotations

from typing import Any

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
BYTES = 256
STAND_IN_NAME = "byte-level stand-in tokenizer (built offline; random weights only)"


def stand_in_tokenizer(vocab_size: int) -> Any:
    """A `PreTrainedTokenizerFast` for a text tower of `vocab_size` tokens (at least 258)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if vocab_size < BYTES + 2:
        raise ValueError(
            f"a text tower of {vocab_size} tokens is too small for the byte-level stand-in "
            f"tokenizer (it needs {BYTES + 2}); give the model its own tokenizer files"
        )
    bos_id, eos_id = vocab_size - 2, vocab_size - 1
    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab |= {BOS: bos_id, EOS: eos_id}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=EOS))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, bos_id), (EOS, eos_id)]
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        name_or_path=STAND_IN_NAME,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
    )
