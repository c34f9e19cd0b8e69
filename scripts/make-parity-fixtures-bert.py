#!/usr/bin/env python3
"""Writes test/fixtures/hf-bert/: a small random BERT checkpoint in Hugging Face layout plus reference logits, and
test/fixtures/hf-bert-mlm/: the same encoder as a BertForMaskedLM (with the MLM head) plus reference MLM logits.

Run once (needs PyTorch, Debian's python3-torch; no transformers: BERT's forward is written here in plain torch,
following transformers' modeling_bert.py), then commit the output; the tests need no Python:

    /usr/bin/python3 scripts/make-parity-fixtures-bert.py

Files: config.json (BertForSequenceClassification, hidden 32, 2 layers, 4 heads, 2 labels), model.safetensors (F32,
keys with the `bert.` prefix, `classifier.*`), tokenizer.json (a tiny lowercase WordPiece vocabulary),
tokenizer_config.json, reference.json (texts, their ids from a reference WordPiece written here, a padded batch,
logits of the base classifier and of the classifier with a LoRA adapter on query and value, computed in float64).
hf-bert-mlm/: config.json (BertForMaskedLM), model.safetensors (the same `bert.` tensors, no pooler or classifier,
plus `cls.predictions.transform.{dense,LayerNorm}.*` and `cls.predictions.bias`; the decoder is tied to the word
embeddings and not saved, as save_pretrained drops tied weights), the same tokenizer, reference.json (a masked
batch and the MLM logits at every real position, base and with the LoRA adapter above, float64).
"""
import json
import math
import os
import struct
import unicodedata

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf-bert')
OUT_MLM = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf-bert-mlm')
HIDDEN, LAYERS, HEADS, INTER, MAX_POS, TYPES, LABELS, EPS = 32, 2, 4, 48, 64, 2, 2, 1e-12

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
WORDS = ('the a an is are was this that it to of and in on for with you your we free money win now click here '
         'offer meeting today tomorrow please send report project hello world test spam email message call '
         'buy cheap best price friend family lunch team update').split()
PIECES = ['##ing', '##ed', '##er', '##ly', '##est']
PUNCT = list('!,.?$:;\'"-')
CHARS = list('abcdefghijklmnopqrstuvwxyz0123456789')
VOCAB = SPECIALS + WORDS + PIECES + PUNCT + [c for c in CHARS if c not in WORDS] + ['##' + c for c in CHARS]
assert len(VOCAB) == len(set(VOCAB))
VOCAB_INDEX = {t: i for i, t in enumerate(VOCAB)}
TEXTS = ['Hello world, this is a test!', 'WIN free money now: click here!!', 'Please send the report today.',
         'Meetings tomorrow with the team?']


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith('P')


def wordpiece(text):
    """BertNormalizer (lowercase, strip accents) + BertPreTokenizer + greedy longest-match WordPiece."""
    text = unicodedata.normalize('NFD', text.lower())
    text = ''.join(c for c in text if unicodedata.category(c) != 'Mn')
    words, cur = [], ''
    for ch in text:
        if ch.isspace():
            if cur: words.append(cur)
            cur = ''
        elif is_punct(ch):
            if cur: words.append(cur)
            words.append(ch)
            cur = ''
        else:
            cur += ch
    if cur: words.append(cur)
    ids = []
    for w in words:
        start, pieces = 0, []
        while start < len(w):
            end, found = len(w), None
            while start < end:
                sub = w[start:end] if start == 0 else '##' + w[start:end]
                if sub in VOCAB_INDEX:
                    found = sub
                    break
                end -= 1
            if found is None:
                pieces = ['[UNK]']
                break
            pieces.append(found)
            start = end
        ids.extend(VOCAB_INDEX[p] for p in pieces)
    return ids


def tokenizer_json():
    special = lambda t: {'id': VOCAB_INDEX[t], 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False,
                         'normalized': False, 'special': True}
    cls_sep = {t: {'id': t, 'ids': [VOCAB_INDEX[t]], 'tokens': [t]} for t in ['[CLS]', '[SEP]']}
    return {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [special(t) for t in SPECIALS],
        'normalizer': {'type': 'BertNormalizer', 'clean_text': True, 'handle_chinese_chars': True,
                       'strip_accents': None, 'lowercase': True},
        'pre_tokenizer': {'type': 'BertPreTokenizer'},
        'post_processor': {'type': 'TemplateProcessing',
                           'single': [{'SpecialToken': {'id': '[CLS]', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                                      {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}],
                           'pair': [{'SpecialToken': {'id': '[CLS]', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                                    {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 1}},
                                    {'SpecialToken': {'id': '[SEP]', 'type_id': 1}}],
                           'special_tokens': cls_sep},
        'decoder': {'type': 'WordPiece', 'prefix': '##', 'cleanup': True},
        'model': {'type': 'WordPiece', 'unk_token': '[UNK]', 'continuing_subword_prefix': '##',
                  'max_input_chars_per_word': 100, 'vocab': VOCAB_INDEX},
    }


def random_weights(gen):
    n = lambda *shape, std=0.2: (torch.randn(*shape, generator=gen) * std).float()
    w = {'bert.embeddings.word_embeddings.weight': n(len(VOCAB), HIDDEN, std=0.5),
         'bert.embeddings.position_embeddings.weight': n(MAX_POS, HIDDEN, std=0.5),
         'bert.embeddings.token_type_embeddings.weight': n(TYPES, HIDDEN, std=0.5)}
    ln = lambda p: {p + '.weight': (1 + n(HIDDEN, std=0.1)), p + '.bias': n(HIDDEN, std=0.1)}
    w.update(ln('bert.embeddings.LayerNorm'))
    for i in range(LAYERS):
        p = f'bert.encoder.layer.{i}.'
        for m in ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']:
            w[p + m + '.weight'] = n(HIDDEN, HIDDEN)
            w[p + m + '.bias'] = n(HIDDEN, std=0.1)
        w.update(ln(p + 'attention.output.LayerNorm'))
        w[p + 'intermediate.dense.weight'] = n(INTER, HIDDEN)
        w[p + 'intermediate.dense.bias'] = n(INTER, std=0.1)
        w[p + 'output.dense.weight'] = n(HIDDEN, INTER)
        w[p + 'output.dense.bias'] = n(HIDDEN, std=0.1)
        w.update(ln(p + 'output.LayerNorm'))
    w['bert.pooler.dense.weight'] = n(HIDDEN, HIDDEN)
    w['bert.pooler.dense.bias'] = n(HIDDEN, std=0.1)
    w['classifier.weight'] = n(LABELS, HIDDEN, std=0.5)
    w['classifier.bias'] = n(LABELS, std=0.1)
    return w


def mlm_head_weights(gen):
    """BertForMaskedLM's cls.predictions (decoder tied to the word embeddings), random so that the test sees it."""
    n = lambda *shape, std=0.2: (torch.randn(*shape, generator=gen) * std).float()
    return {'cls.predictions.transform.dense.weight': n(HIDDEN, HIDDEN),
            'cls.predictions.transform.dense.bias': n(HIDDEN, std=0.1),
            'cls.predictions.transform.LayerNorm.weight': 1 + n(HIDDEN, std=0.1),
            'cls.predictions.transform.LayerNorm.bias': n(HIDDEN, std=0.1),
            'cls.predictions.bias': n(len(VOCAB), std=0.1)}


def forward(w, ids, mask, lora=None, mlm=False):
    """BertForSequenceClassification.forward (or BertForMaskedLM's with mlm) in eval mode (float64), after
    modeling_bert.py."""
    g = {k: v.double() for k, v in w.items()}
    f = torch.nn.functional
    b, t = ids.shape
    h = g['bert.embeddings.word_embeddings.weight'][ids] + g['bert.embeddings.position_embeddings.weight'][:t][None] \
        + g['bert.embeddings.token_type_embeddings.weight'][torch.zeros_like(ids)]
    ln = lambda x, p: f.layer_norm(x, (HIDDEN,), g[p + '.weight'], g[p + '.bias'], EPS)
    h = ln(h, 'bert.embeddings.LayerNorm')
    ext = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min
    d = HIDDEN // HEADS

    def lin(x, path):
        y = f.linear(x, g[path + '.weight'], g[path + '.bias'])
        if lora and path in lora['modules']:
            a, bb = lora['modules'][path]
            y = y + lora['scale'] * f.linear(f.linear(x, a.double()), bb.double())
        return y

    heads = lambda x: x.view(b, t, HEADS, d).permute(0, 2, 1, 3)
    for i in range(LAYERS):
        p = f'bert.encoder.layer.{i}.'
        q, k, v = (heads(lin(h, p + 'attention.self.' + m)) for m in ['query', 'key', 'value'])
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext
        ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, t, HIDDEN)
        a = ln(lin(ctx, p + 'attention.output.dense') + h, p + 'attention.output.LayerNorm')
        inter = f.gelu(lin(a, p + 'intermediate.dense'))
        h = ln(lin(inter, p + 'output.dense') + a, p + 'output.LayerNorm')
    if mlm:
        x = f.gelu(lin(h, 'cls.predictions.transform.dense'))
        x = ln(x, 'cls.predictions.transform.LayerNorm')
        return x @ g['bert.embeddings.word_embeddings.weight'].T + g['cls.predictions.bias']
    pooled = torch.tanh(lin(h[:, 0], 'bert.pooler.dense'))
    return f.linear(pooled, g['classifier.weight'], g['classifier.bias'])


def write_safetensors(path, tensors):
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name in sorted(tensors):
        data = tensors[name].contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * ((8 - len(raw) % 8) % 8)
    with open(path, 'wb') as fh:
        fh.write(struct.pack('<Q', len(raw)) + raw + b''.join(blobs))


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    w = random_weights(gen)
    config = {'architectures': ['BertForSequenceClassification'], 'model_type': 'bert', 'vocab_size': len(VOCAB),
              'hidden_size': HIDDEN, 'num_hidden_layers': LAYERS, 'num_attention_heads': HEADS,
              'intermediate_size': INTER, 'hidden_act': 'gelu', 'hidden_dropout_prob': 0.1,
              'attention_probs_dropout_prob': 0.1, 'max_position_embeddings': MAX_POS, 'type_vocab_size': TYPES,
              'initializer_range': 0.02, 'layer_norm_eps': EPS, 'pad_token_id': 0,
              'position_embedding_type': 'absolute', 'id2label': {'0': 'ham', '1': 'spam'},
              'label2id': {'ham': 0, 'spam': 1}, 'torch_dtype': 'float32'}
    with open(os.path.join(OUT, 'config.json'), 'w') as fh:
        json.dump(config, fh, indent=2)
    write_safetensors(os.path.join(OUT, 'model.safetensors'), w)
    with open(os.path.join(OUT, 'tokenizer.json'), 'w') as fh:
        json.dump(tokenizer_json(), fh)
    with open(os.path.join(OUT, 'tokenizer_config.json'), 'w') as fh:
        json.dump({'do_lower_case': True, 'model_max_length': MAX_POS, 'tokenizer_class': 'BertTokenizer',
                   'cls_token': '[CLS]', 'sep_token': '[SEP]', 'pad_token': '[PAD]', 'unk_token': '[UNK]',
                   'mask_token': '[MASK]'}, fh, indent=2)

    encoded = [[VOCAB_INDEX['[CLS]']] + wordpiece(t) + [VOCAB_INDEX['[SEP]']] for t in TEXTS]
    seq_len = max(len(e) for e in encoded)
    ids = torch.tensor([e + [0] * (seq_len - len(e)) for e in encoded])
    mask = torch.tensor([[1] * len(e) + [0] * (seq_len - len(e)) for e in encoded])
    logits = forward(w, ids, mask)

    r, alpha = 4, 8
    modules, lora_tensors = {}, {}
    for i in range(LAYERS):
        for m in ['query', 'value']:
            path = f'bert.encoder.layer.{i}.attention.self.{m}'
            a = (torch.randn(r, HIDDEN, generator=gen) * 0.3).float()
            bb = (torch.randn(HIDDEN, r, generator=gen) * 0.3).float()
            modules[path] = (a, bb)
            lora_tensors[path + '.lora_A.weight'] = a.flatten().tolist()
            lora_tensors[path + '.lora_B.weight'] = bb.flatten().tolist()
    lora_logits = forward(w, ids, mask, {'modules': modules, 'scale': alpha / r})

    reference = {'texts': TEXTS, 'encoded': encoded, 'batch_size': len(TEXTS), 'seq_len': seq_len,
                 'input_ids': ids.flatten().tolist(), 'attention_mask': mask.flatten().tolist(),
                 'logits': logits.flatten().tolist(),
                 'lora': {'r': r, 'lora_alpha': alpha, 'target_modules': ['q', 'v'], 'tensors': lora_tensors,
                          'logits': lora_logits.flatten().tolist()}}
    with open(os.path.join(OUT, 'reference.json'), 'w') as fh:
        json.dump(reference, fh)
    print('wrote', OUT, 'logits', logits.tolist())
    write_mlm_fixture(w, ids, mask, modules, r, alpha, lora_tensors, config)


def write_mlm_fixture(w, ids, mask, modules, r, alpha, lora_tensors, cls_config):
    """hf-bert-mlm/: the encoder of hf-bert with an MLM head; a fixed masked batch and its logits."""
    os.makedirs(OUT_MLM, exist_ok=True)
    head = mlm_head_weights(torch.Generator().manual_seed(4321))
    mw = {k: v for k, v in w.items() if k.startswith('bert.') and not k.startswith('bert.pooler.')}
    mw.update(head)
    config = {k: v for k, v in cls_config.items() if k not in ('id2label', 'label2id')}
    config['architectures'] = ['BertForMaskedLM']
    with open(os.path.join(OUT_MLM, 'config.json'), 'w') as fh:
        json.dump(config, fh, indent=2)
    write_safetensors(os.path.join(OUT_MLM, 'model.safetensors'), mw)
    for name in ['tokenizer.json', 'tokenizer_config.json']:
        with open(os.path.join(OUT, name)) as src, open(os.path.join(OUT_MLM, name), 'w') as dst:
            dst.write(src.read())
    # A fixed masked batch: [MASK] at the 2nd and 5th real token of each sequence, a random word at the 3rd.
    masked = ids.clone()
    labels = torch.full_like(ids, -100)
    for b in range(ids.shape[0]):
        for pos, repl in [(2, VOCAB_INDEX['[MASK]']), (5, VOCAB_INDEX['[MASK]']), (3, VOCAB_INDEX['money'])]:
            if mask[b, pos] == 1 and mask[b, pos + 1] == 1:
                labels[b, pos] = ids[b, pos]
                masked[b, pos] = repl
    full = {**w, **head}
    logits = forward(full, masked, mask, mlm=True)
    lora_logits = forward(full, masked, mask, {'modules': modules, 'scale': alpha / r}, mlm=True)
    real = mask.flatten().nonzero().flatten()
    chosen = (labels.flatten() >= 0).nonzero().flatten()
    v = len(VOCAB)
    rounded = lambda t: [float('%.7g' % x) for x in t.flatten().tolist()]
    reference = {'batch_size': ids.shape[0], 'seq_len': ids.shape[1], 'input_ids': masked.flatten().tolist(),
                 'attention_mask': mask.flatten().tolist(), 'labels': labels.flatten().tolist(),
                 'real_positions': real.tolist(), 'logits': rounded(logits.reshape(-1, v)[real]),
                 'lora': {'r': r, 'lora_alpha': alpha, 'target_modules': ['q', 'v'], 'tensors': lora_tensors,
                          'masked_positions': chosen.tolist(), 'logits': rounded(lora_logits.reshape(-1, v)[chosen])}}
    with open(os.path.join(OUT_MLM, 'reference.json'), 'w') as fh:
        json.dump(reference, fh)
    print('wrote', OUT_MLM, 'masked positions', chosen.tolist())


if __name__ == '__main__':
    main()
