"""A tiny random-weight Higgs Audio v2 model and audio tokenizer, built on disk in seconds on a CPU.

What stays as in the real checkpoints, because boson-multimodal's code depends on it:
- the audio tokenizer's 24 kHz rate, its hop of 960 samples (ratios 8*5*4*2*3, so 25 frames a second),
  8 codebooks of 1024 entries, and its DAC-style encoder/decoder (their widths are fixed in boson's code, so
  the decoder's receptive field, and the window sizes measured with it, are the real ones);
- the model's delay pattern, dual-FFN audio layers, the Higgs special tokens and the chat format;
  (its audio head is sharpened and never picks EOS, so every sentence runs to max_new_tokens: known lengths);
- a HuBERT feature model with hidden size 768 (hard-coded in the tokenizer).
What is small: the LLM (2 layers, hidden 64), the text tokenizer (bytes plus the special tokens), the
tokenizer's latent size D, and HuBERT (1 layer, narrow convolutions).

The tokenizer always loads `bosonai/hubert_base` from the Hugging Face hub; the tiny HuBERT is written into a
private hub cache under that name, and `hub_environment()` points HF_HUB_CACHE there with HF_HUB_OFFLINE=1,
so the product's real loading code runs and nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HUBERT_REPO = "bosonai/hubert_base"
SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<|eom_id|>", "<|recipient|>", "<|audio_bos|>", "<|audio_eos|>", "<|audio_out_bos|>", "<|AUDIO|>",
    "<|AUDIO_OUT|>", "<|scene_desc_start|>", "<|scene_desc_end|>",
]
AUDIO_TOKENIZER_CONFIG = {
    "n_filters": 32,
    "D": 16,
    "codebook_dim": 8,
    "target_bandwidths": [0.5, 1, 1.5, 2, 4],
    "ratios": [8, 5, 4, 2, 3],
    "sample_rate": 24000,
    "bins": 1024,
    "n_q": 8,
    "semantic_techer": "hubert_base_general",
}


@dataclass(frozen=True)
class TinyHiggs:
    model_dir: Path
    audio_tokenizer_dir: Path
    hub_cache: Path

    def hub_environment(self) -> dict[str, str]:
        """Environment for a process that loads the tiny model: the private hub cache, offline."""
        return {"HF_HUB_CACHE": str(self.hub_cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def profile_settings(self) -> dict[str, object]:
        """`tts.higgs.*` settings that select this model on the CPU."""
        return {
            "tts.higgs.model": str(self.model_dir),
            "tts.higgs.audio_tokenizer": str(self.audio_tokenizer_dir),
            "tts.higgs.device": "cpu",
            "tts.higgs.dtype": "float32",
            "tts.higgs.kv_cache_lengths": [1024],
        }


def build(root: Path, seed: int = 0) -> TinyHiggs:
    """Write the tiny model, its text tokenizer, the audio tokenizer and a hub cache with a tiny HuBERT."""
    import torch

    torch.manual_seed(seed)
    tiny = TinyHiggs(root / "model", root / "audio_tokenizer", root / "hub")
    _write_hubert(tiny.hub_cache)
    tokenizer = _write_text_tokenizer(tiny.model_dir)
    _write_model(tiny.model_dir, tokenizer)
    _write_audio_tokenizer(tiny)
    return tiny


def _write_hubert(hub_cache: Path) -> None:
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=16,
        vocab_size=32,
    )
    revision = "0" * 40
    repo = hub_cache / f"models--{HUBERT_REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    HubertModel(config).save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    (hub_cache / "version.txt").write_text("1")  # transformers' cache layout marker: no migration notice


def _write_text_tokenizer(model_dir: Path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|end_of_text|>",
        additional_special_tokens=SPECIAL_TOKENS[2:],
    )
    tokenizer.save_pretrained(model_dir)
    return tokenizer


def _write_model(model_dir: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    from boson_multimodal.model.higgs_audio import HiggsAudioConfig, HiggsAudioModel

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    text_config = {
        "model_type": "llama",
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 8192,
        "bos_token_id": ids["<|begin_of_text|>"],
        "eos_token_id": ids["<|end_of_text|>"],
    }
    config = HiggsAudioConfig(
        text_config=text_config,
        audio_encoder_config={"d_model": 64, "encoder_layers": 1, "encoder_attention_heads": 4,
                              "encoder_ffn_dim": 64, "num_mel_bins": 128},
        audio_adapter_type="dual_ffn_fast_forward",
        audio_dual_ffn_layers=[0, 1],
        audio_ffn_hidden_size=64,
        audio_ffn_intermediate_size=128,
        encode_whisper_embed=False,
        encode_audio_in_tokens=True,
        use_delay_pattern=True,
        skip_audio_tower=True,
        audio_num_codebooks=8,
        audio_codebook_size=1024,
        audio_in_token_idx=ids["<|AUDIO|>"],
        audio_out_token_idx=ids["<|AUDIO_OUT|>"],
        audio_out_bos_token_id=ids["<|audio_out_bos|>"],
        audio_eos_token_id=ids["<|audio_eos|>"],
        pad_token_id=ids["<|end_of_text|>"],
        hidden_size=64,
    )
    model = HiggsAudioModel(config)
    _never_end_speech(model, config.audio_codebook_size)
    model.save_pretrained(model_dir)


def _never_end_speech(model, codebook_size: int) -> None:  # type: ignore[no-untyped-def]
    """Sharpen the random audio head and silence its BOS/EOS rows: speech then always runs to max_new_tokens.

    A near-uniform random head would end the speech (sample EOS) at a random step; tests need known lengths.
    """
    import torch

    head = model.audio_decoder_proj.audio_lm_head.weight
    with torch.no_grad():
        rows = head.view(-1, codebook_size + 2, head.shape[-1])
        rows.mul_(100.0)
        rows[:, codebook_size:, :] = 0.0


def _write_audio_tokenizer(tiny: TinyHiggs) -> None:
    import os

    import torch

    from voicechat.tts.higgs.compat import ensure_torchaudio

    ensure_torchaudio()
    from boson_multimodal.audio_processing.higgs_audio_tokenizer import HiggsAudioTokenizer

    saved = {key: os.environ.get(key) for key in tiny.hub_environment()}
    os.environ.update(tiny.hub_environment())
    try:
        with _hub_cache(tiny.hub_cache):
            model = HiggsAudioTokenizer(**AUDIO_TOKENIZER_CONFIG, device="cpu")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    tiny.audio_tokenizer_dir.mkdir(parents=True, exist_ok=True)
    (tiny.audio_tokenizer_dir / "config.json").write_text(json.dumps(AUDIO_TOKENIZER_CONFIG))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("semantic_model.")}
    torch.save(state, tiny.audio_tokenizer_dir / "model.pth")


class _hub_cache:
    """Point already-imported huggingface_hub/transformers at a cache dir, offline, for the block."""

    def __init__(self, cache: Path) -> None:
        self.cache = str(cache)
        self.saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> _hub_cache:
        import huggingface_hub.constants as hub_constants
        import transformers.utils.hub as transformers_hub

        for module, name, value in (
            (hub_constants, "HF_HUB_CACHE", self.cache),
            (hub_constants, "HF_HUB_OFFLINE", True),
            (transformers_hub, "TRANSFORMERS_CACHE", self.cache),
            (transformers_hub, "_is_offline_mode", True),
        ):
            if hasattr(module, name):
                self.saved.append((module, name, getattr(module, name)))
                setattr(module, name, value)
        return self

    def __exit__(self, *exc: object) -> None:
        for module, name, value in reversed(self.saved):
            setattr(module, name, value)


def hub_cache(tiny: TinyHiggs) -> _hub_cache:
    """Context manager for loading the tiny model in this process (see the module docstring)."""
    return _hub_cache(tiny.hub_cache)
