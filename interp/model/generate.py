"""Sampling with a KV cache: greedy, temperature, top-k, top-p (nucleus); seeded; stops at end-of-sequence.

The prompt is run once; each new token then costs one single-position forward that reads the cached keys
and values, so generation is linear, not quadratic, in its length.

Two entry points. `generate` is interp's own and what every analysis calls: it returns the continuation
only, temperature 0 (greedy) unless asked. `generate_tl` is `Transformer.generate`, TransformerLens'
meaning: prompt + continuation, sampling by default at temperature 1, TL's argument names.

A padded prompt continues each row as it would continue alone: the mask gives positions and hides the
padding, and rows whose padding is not on the left are packed to the right first (the next token is read
at the last column), then returned in the caller's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from interp.errors import InvalidInputError
from interp.model.sampling import check_sampling

if TYPE_CHECKING:
    from interp.model.transformer import Transformer


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus to -inf. logits (b, vocab)."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p (the first token always stays)
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
               gen: torch.Generator) -> torch.Tensor:
    """(b, vocab) -> (b,): greedy at temperature 0, else sampled from the filtered distribution."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=gen)[:, 0]


@torch.no_grad()
def generate(
    model: Transformer,
    input: str | Sequence[str] | torch.Tensor,
    max_new_tokens: int = 20,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_at_eos: bool = True,
    use_cache: bool = True,
    attention_mask: torch.Tensor | None = None,
    return_text: bool | None = None,
    eos_token_id: int | Sequence[int] | None = None,
) -> torch.Tensor | str | list[str]:
    """Continue `input`. Text in gives text out (the continuation only); tokens in gives the new tokens
    (batch, n_new). temperature 0 is greedy; with a seed, sampling is reproducible. `eos_token_id` (one id
    or several) replaces the model's end-of-sequence id; finished rows are filled with the first."""
    from interp.model.transformer import KVCache

    check_sampling(max_new_tokens, temperature, top_k, top_p)
    text_in = not isinstance(input, torch.Tensor)
    tokens, attention_mask = _prompt_batch(model, input, attention_mask, max_new_tokens)
    gen = torch.Generator(device=tokens.device)
    if seed is not None:
        gen.manual_seed(seed)
    stops = _stop_ids(model, eos_token_id)
    eos = stops[0] if stops else None
    b = tokens.shape[0]
    done = torch.zeros(b, dtype=torch.bool, device=tokens.device)
    new_tokens: list[torch.Tensor] = []
    cache = KVCache(model.cfg.n_layers) if use_cache else None
    step_in, step_mask = tokens, attention_mask.bool()
    all_tokens, all_mask = tokens, attention_mask.bool()
    for _ in range(max_new_tokens):
        reencode = model.cfg.reencode_at
        if use_cache and reencode and cache.length < reencode <= all_tokens.shape[1]:
            cache, step_in, step_mask = KVCache(model.cfg.n_layers), all_tokens, all_mask  # as transformers' Phi-3
        if use_cache:
            logits = model(step_in, attention_mask=step_mask, past_kv=cache)[:, -1]
        else:
            logits = model(all_tokens, attention_mask=all_mask)[:, -1]
        nxt = next_token(logits.float(), temperature, top_k, top_p, gen)
        if eos is not None:
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        new_tokens.append(nxt)
        step_in, step_mask = nxt[:, None], torch.ones((b, 1), dtype=torch.bool, device=tokens.device)
        all_tokens = torch.cat([all_tokens, step_in], 1)
        all_mask = torch.cat([all_mask, step_mask], 1)
        if eos is not None and stop_at_eos:
            done |= torch.isin(nxt, torch.tensor(stops, device=nxt.device))
            if bool(done.all()):
                break
    out = torch.stack(new_tokens, 1)  # (b, n_new)
    if return_text is False or (return_text is None and not text_in):
        return out
    texts = [_decode_until_eos(model, row, eos if stop_at_eos else None) for row in out.tolist()]
    return texts[0] if isinstance(input, str) else texts


def _prompt_batch(model: Transformer, input, attention_mask: torch.Tensor | None,
                  max_new_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """generate's input as (tokens, mask) (b, p), refused in one sentence if it leaves no room in the context
    for max_new_tokens."""
    if not isinstance(input, torch.Tensor):
        tokens, attention_mask = model.to_batch(input)
    else:
        tokens = input
        if attention_mask is None:
            attention_mask = torch.ones_like(tokens, dtype=torch.bool)
        elif attention_mask.shape != tokens.shape:
            raise InvalidInputError(f"The attention mask is {tuple(attention_mask.shape)} but the prompt is "
                                    f"{tuple(tokens.shape)}; give one 0/1 entry per prompt token.")
        tokens, attention_mask = _pack_right(tokens, attention_mask.bool())
    if tokens.shape[1] + max_new_tokens > model.cfg.n_ctx:
        raise InvalidInputError(
            f"The prompt ({tokens.shape[1]} tokens) plus {max_new_tokens} new tokens exceeds "
            f"{model.cfg.name}'s context of {model.cfg.n_ctx}."
        )
    return tokens, attention_mask


def _pack_right(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real tokens (in order) to the right end, padding to the left, so the last column is
    every row's last real token. Left-padded input comes back unchanged."""
    if bool((mask[:, :-1] & ~mask[:, 1:]).any()):  # a real token followed by padding somewhere
        order = torch.sort(mask.int(), dim=1, stable=True).indices  # (b, p) padding first, then the real tokens
        tokens, mask = tokens.gather(1, order), mask.gather(1, order)
    return tokens, mask


def _stop_ids(model: Transformer, eos_token_id: int | Sequence[int] | None) -> list[int]:
    if eos_token_id is None:
        return [] if model.cfg.eos_token_id is None else [model.cfg.eos_token_id]
    return [int(eos_token_id)] if isinstance(eos_token_id, int) else [int(i) for i in eos_token_id]


def _decode_until_eos(model: Transformer, ids: list[int], eos: int | None) -> str:
    if eos is not None and eos in ids:
        ids = ids[: ids.index(eos)]
    return model.to_string(ids)


def generate_tl(model: Transformer, input: str | Sequence[str] | torch.Tensor = "", max_new_tokens: int = 10,
                stop_at_eos: bool = True, eos_token_id: int | Sequence[int] | None = None, do_sample: bool = True,
                top_k: int | None = None, top_p: float | None = None, temperature: float = 1.0,
                use_past_kv_cache: bool = True, prepend_bos: bool | None = None, padding_side: str | None = None,
                return_type: str | None = "input", verbose: bool = True, attention_mask: torch.Tensor | None = None,
                seed: int | None = None):
    """TransformerLens' `generate` (4.3's TransformerBridge): the prompt followed by up to max_new_tokens
    tokens, stopping when every row has produced an end-of-sequence id (finished rows are filled with it).

    A text gives a text and a list of texts a list (left-padded, as TransformerLens does), both decoded
    without special tokens; a token tensor gives tokens (batch, prompt + new) unless return_type="str".
    Token input without `attention_mask` uses the padding `to_tokens` remembered, else pad ids read off
    the left (and the right with padding_side="right"), as `Transformer.forward` does. do_sample=False or
    temperature 0 is greedy. Without `seed`, sampling draws its seed from torch's global generator, so
    `torch.manual_seed` makes it reproducible as in TransformerLens. `verbose` is accepted and ignored (the
    bridge ignores it too)."""
    from interp.model.tokenize import mask_for

    tokens, kind = _tl_prompt(model, input, prepend_bos)
    if attention_mask is None and kind == "tokens":
        attention_mask = mask_for(model, tokens, padding_side)
    elif attention_mask is None:
        attention_mask = mask_for(model, tokens)  # what to_tokens remembered
    if do_sample and temperature > 0 and seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    new = generate(model, tokens, max_new_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0,
                   top_k=top_k, top_p=top_p, seed=seed, stop_at_eos=stop_at_eos, use_cache=use_past_kv_cache,
                   attention_mask=attention_mask, return_text=False, eos_token_id=eos_token_id)
    out = torch.cat([tokens, new.to(tokens.device)], dim=1)  # (b, prompt + new)
    if return_type == "input":
        return_type = "tokens" if kind == "tokens" else "str"
    if return_type in ("tokens", None):  # TransformerLens gives tokens for None too
        return out
    if return_type != "str":
        raise InvalidInputError(f"return_type must be 'input', 'str', 'tokens' or None, got {return_type!r}.")
    texts = [model._need_tokenizer().decode(row, skip_special_tokens=True) for row in out.tolist()]
    return texts[0] if kind == "str" or len(texts) == 1 else texts  # TransformerLens unwraps a batch of one


def _tl_prompt(model: Transformer, input, prepend_bos: bool | None) -> tuple[torch.Tensor, str]:
    """generate_tl's prompt as tokens (b, p) and what it was: "str", "list" or "tokens"."""
    if isinstance(input, str):
        return model.to_tokens(input, prepend_bos, truncate=False), "str"
    if isinstance(input, (list, tuple)):
        return model.to_tokens(list(input), prepend_bos, padding_side="left", truncate=False), "list"
    if isinstance(input, torch.Tensor) and not input.is_floating_point():
        if input.dim() == 1:
            input = input[None]  # one sequence of ids, as TransformerLens promotes it
        return input.to(model.device), "tokens"
    raise InvalidInputError("generate takes a text, a list of texts, or a tensor of token ids.")
