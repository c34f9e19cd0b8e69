#!/usr/bin/python3
"""Writes the LLaMA parity fixtures under test/fixtures/hf-llama/ (committed; the tests need no Python).

An independent reference for swarmtune's Hugging Face loader: a small random LLaMA-layout checkpoint in HF format
and its logits computed here in plain PyTorch, following transformers' modeling_llama.py (RMSNorm, rotate_half RoPE,
grouped-query attention with repeat_kv, SwiGLU MLP), plus a PEFT-layout LoRA adapter and the logits with it.

Run once with Debian's torch (apt-get install -y python3-torch): /usr/bin/python3 scripts/make-parity-fixtures-llama.py

Outputs (directory test/fixtures/hf-llama/):
  model/      config.json, model.safetensors.index.json + 2 shards (shard 1 F16, shard 2 BF16), tokenizer.json,
              tokenizer_config.json
  adapter/    adapter_config.json, adapter_model.safetensors (F32; PEFT keys, random A and B on every linear)
  reference.safetensors   input_ids [2, 12] (as F32), logits [2, 12, vocab] (base) and logits_lora (with adapter)
"""
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf-llama')
DIM, LAYERS, HEADS, KV_HEADS, HIDDEN, MAX_POS = 64, 2, 4, 2, 96, 128
EPS, THETA = 1e-5, 10000.0
LORA_R, LORA_ALPHA = 4, 8
TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
HEAD_DIM = DIM // HEADS

DTYPE_NAMES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16'}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> torch tensor (F32/F16/BF16). Header padded to 8 bytes, data in sorted name order."""
    header = {} if metadata is None else {'__metadata__': metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {'dtype': DTYPE_NAMES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make_tokenizer():
    """A tiny llama-style BPE with byte fallback: specials, 256 byte tokens, letters, a few merges."""
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    for b in range(256):
        vocab['<0x%02X>' % b] = len(vocab)
    for ch in '\u2581abcdefghijklmnopqrstuvwxyz':
        vocab[ch] = len(vocab)
    merges = [('t', 'h'), ('h', 'e'), ('\u2581', 't'), ('\u2581t', 'he'), ('i', 'n'), ('e', 'r'), ('a', 'n'), ('o', 'n'),
              ('\u2581', 'a'), ('\u2581', 's'), ('r', 'e'), ('a', 't'), ('e', 'n'), ('o', 'r'), ('\u2581', 'c')]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    special = lambda i, c: {'id': i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False,
                            'normalized': False, 'special': True}
    tok = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
        'normalizer': {'type': 'Sequence', 'normalizers': [
            {'type': 'Prepend', 'prepend': '\u2581'},
            {'type': 'Replace', 'pattern': {'String': ' '}, 'content': '\u2581'}]},
        'pre_tokenizer': None,
        'post_processor': None,
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': '\u2581'}, 'content': ' '},
            {'type': 'ByteFallback'}, {'type': 'Fuse'}, {'type': 'Strip', 'content': ' ', 'start': 1, 'stop': 0}]},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': True, 'ignore_merges': False,
                  'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }
    config = {'tokenizer_class': 'LlamaTokenizer', 'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>',
              'pad_token': None, 'add_bos_token': True, 'add_eos_token': False, 'legacy': True,
              'clean_up_tokenization_spaces': False, 'model_max_length': MAX_POS}
    return tok, config, len(vocab)


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def linear(x, weights, name, lora):
    y = x @ weights[name + '.weight'].T
    if lora is not None and (name + '.lora_A.weight') in lora:
        a, b = lora[name + '.lora_A.weight'], lora[name + '.lora_B.weight']
        y = y + (LORA_ALPHA / LORA_R) * ((x @ a.T) @ b.T)
    return y


def forward(weights, ids, lora=None):
    """modeling_llama.LlamaForCausalLM.forward in float64, no cache, full causal attention."""
    batch, seq = ids.shape
    x = weights['model.embed_tokens.weight'][ids]
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.full((seq, seq), float('-inf'), dtype=torch.float64).triu(1)
    for i in range(LAYERS):
        p = f'model.layers.{i}.'
        h = rms_norm(x, weights[p + 'input_layernorm.weight'])
        q = linear(h, weights, p + 'self_attn.q_proj', lora).view(batch, seq, HEADS, HEAD_DIM).transpose(1, 2)
        k = linear(h, weights, p + 'self_attn.k_proj', lora).view(batch, seq, KV_HEADS, HEAD_DIM).transpose(1, 2)
        v = linear(h, weights, p + 'self_attn.v_proj', lora).view(batch, seq, KV_HEADS, HEAD_DIM).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(HEADS // KV_HEADS, dim=1)  # repeat_kv
        v = v.repeat_interleave(HEADS // KV_HEADS, dim=1)
        att = torch.softmax(q @ k.transpose(2, 3) / HEAD_DIM ** 0.5 + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(batch, seq, DIM)
        x = x + linear(o, weights, p + 'self_attn.o_proj', lora)
        h = rms_norm(x, weights[p + 'post_attention_layernorm.weight'])
        g = linear(h, weights, p + 'mlp.gate_proj', lora)
        u = linear(h, weights, p + 'mlp.up_proj', lora)
        x = x + linear(torch.nn.functional.silu(g) * u, weights, p + 'mlp.down_proj', lora)
    x = rms_norm(x, weights['model.norm.weight'])
    return x @ weights['lm_head.weight'].T


def main():
    torch.manual_seed(1234)
    tok, tok_config, vocab = make_tokenizer()
    shapes = {'model.embed_tokens.weight': (vocab, DIM), 'model.norm.weight': (DIM,), 'lm_head.weight': (vocab, DIM)}
    out_of = {'q_proj': DIM, 'k_proj': KV_HEADS * HEAD_DIM, 'v_proj': KV_HEADS * HEAD_DIM, 'o_proj': DIM,
              'gate_proj': HIDDEN, 'up_proj': HIDDEN, 'down_proj': DIM}
    in_of = {'q_proj': DIM, 'k_proj': DIM, 'v_proj': DIM, 'o_proj': DIM, 'gate_proj': DIM, 'up_proj': DIM, 'down_proj': HIDDEN}
    module = {t: ('self_attn.' if t in ('q_proj', 'k_proj', 'v_proj', 'o_proj') else 'mlp.') + t for t in TARGETS}
    for i in range(LAYERS):
        shapes[f'model.layers.{i}.input_layernorm.weight'] = (DIM,)
        shapes[f'model.layers.{i}.post_attention_layernorm.weight'] = (DIM,)
        for t in TARGETS:
            shapes[f'model.layers.{i}.{module[t]}.weight'] = (out_of[t], in_of[t])
    stored = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            w = 1.0 + 0.1 * torch.randn(shape)
        elif name == 'model.embed_tokens.weight':
            w = torch.randn(shape)
        else:
            w = torch.randn(shape) / shape[1] ** 0.5
        # Shard 1 (embeddings, layer 0) in F16, shard 2 (the rest) in BF16: both conversions are exercised.
        in_first = name.startswith('model.embed_tokens') or name.startswith('model.layers.0.')
        stored[name] = w.to(torch.float16 if in_first else torch.bfloat16)
    weights = {n: t.to(torch.float64) for n, t in stored.items()}

    model_dir = os.path.join(OUT, 'model')
    adapter_dir = os.path.join(OUT, 'adapter')
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(adapter_dir, exist_ok=True)
    shard_names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']
    shards = [{n: t for n, t in stored.items() if t.dtype == torch.float16},
              {n: t for n, t in stored.items() if t.dtype == torch.bfloat16}]
    weight_map = {}
    for file, tensors in zip(shard_names, shards):
        write_safetensors(os.path.join(model_dir, file), tensors, {'format': 'pt'})
        weight_map.update({n: file for n in tensors})
    total = sum(t.numel() * t.element_size() for t in stored.values())
    with open(os.path.join(model_dir, 'model.safetensors.index.json'), 'w') as f:
        json.dump({'metadata': {'total_size': total}, 'weight_map': dict(sorted(weight_map.items()))}, f, indent=2)
    config = {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': vocab, 'hidden_size': DIM,
        'intermediate_size': HIDDEN, 'num_hidden_layers': LAYERS, 'num_attention_heads': HEADS,
        'num_key_value_heads': KV_HEADS, 'hidden_act': 'silu', 'max_position_embeddings': MAX_POS,
        'rms_norm_eps': EPS, 'rope_theta': THETA, 'rope_scaling': None, 'attention_bias': False,
        'tie_word_embeddings': False, 'bos_token_id': 1, 'eos_token_id': 2, 'torch_dtype': 'bfloat16',
    }
    with open(os.path.join(model_dir, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(model_dir, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(model_dir, 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_config, f, indent=2)

    lora32 = {}
    for i in range(LAYERS):
        for t in TARGETS:
            p = f'model.layers.{i}.{module[t]}'
            lora32[p + '.lora_A.weight'] = torch.randn(LORA_R, in_of[t]) / in_of[t] ** 0.5
            lora32[p + '.lora_B.weight'] = 0.2 * torch.randn(out_of[t], LORA_R)
    write_safetensors(os.path.join(adapter_dir, 'adapter_model.safetensors'),
                      {'base_model.model.' + n: t for n, t in lora32.items()}, {'format': 'pt'})
    adapter_config = {
        'peft_type': 'LORA', 'task_type': 'CAUSAL_LM', 'base_model_name_or_path': 'test/fixtures/hf-llama/model',
        'r': LORA_R, 'lora_alpha': LORA_ALPHA, 'lora_dropout': 0.0, 'target_modules': TARGETS, 'bias': 'none',
        'fan_in_fan_out': False, 'inference_mode': True, 'init_lora_weights': True, 'use_rslora': False,
        'use_dora': False, 'modules_to_save': None, 'layers_to_transform': None, 'revision': None,
    }
    with open(os.path.join(adapter_dir, 'adapter_config.json'), 'w') as f:
        json.dump(adapter_config, f, indent=2)

    ids = torch.randint(3, vocab, (2, 12))
    ids[:, 0] = 1  # BOS
    with torch.no_grad():
        logits = forward(weights, ids)
        logits_lora = forward(weights, ids, {n: t.to(torch.float64) for n, t in lora32.items()})
    write_safetensors(os.path.join(OUT, 'reference.safetensors'), {
        'input_ids': ids.to(torch.float32), 'logits': logits.to(torch.float32), 'logits_lora': logits_lora.to(torch.float32)})
    print(f'wrote {OUT}: vocab {vocab}, logits |max| {logits.abs().max():.3f}, '
          f'lora changes logits by up to {(logits_lora - logits).abs().max():.3f}')


if __name__ == '__main__':
    main()
