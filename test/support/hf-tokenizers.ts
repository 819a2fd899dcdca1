// Small Hugging Face tokenizer.json objects for tests, in the exact format the Rust `tokenizers` library writes,
// small enough that their encodings can be derived by hand from the merge rules (see test/63.hf-tokenizer).

/** GPT-2's bytes_to_unicode: the printable stand-in character of each byte (ByteLevel pre-tokenizer/decoder). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/**
 * A byte-level BPE (GPT-2 / GPT-NeoX style). Ids 0..255 are the bytes themselves (token = bytesToUnicode()[b]);
 * merges, in rank order: h+e -> "he" (256), l+l -> "ll" (257), he+ll -> "hell" (258), Ġ+w -> "Ġw" (259),
 * Ġw+o -> "Ġwo" (260); added special token "<|endoftext|>" (261). Vocabulary size 262.
 */
export function byteLevelBPE(): Record<string, unknown> {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  b2u.forEach((c, b) => (vocab[c] = b));
  const merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["Ġ", "w"], ["Ġw", "o"]];
  merges.forEach(([a, b], i) => (vocab[a + b] = 256 + i));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{ id: 261, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
}

/**
 * A SentencePiece-style BPE with byte fallback (the Llama-2 tokenizer.json layout): normalizer prepends "▁" and
 * replaces spaces by "▁"; decoder Replace("▁" -> " "), ByteFallback, Fuse, Strip one leading space.
 * Ids: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258 (byte b is 3 + b), "▁" 259, "a" 260, "b" 261, "▁a" 262,
 * "ab" 263, "▁ab" 264; merges in rank order ▁+a, a+b, ▁a+b. A post-processor adds <s> (only with
 * addSpecialTokens). Vocabulary size 265.
 */
export function byteFallbackBPE(): Record<string, unknown> {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  Object.assign(vocab, { "▁": 259, a: 260, b: 261, "▁a": 262, ab: 263, "▁ab": 264 });
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
    },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: [["▁", "a"], ["a", "b"], ["▁a", "b"]] },
  };
}

/** A WordLevel tokenizer over whitespace/punctuation pieces: [UNK] 0, the 1, time 2, machine 3, "." 4. */
export function wordLevel(): Record<string, unknown> {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: "[UNK]", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab: { "[UNK]": 0, the: 1, time: 2, machine: 3, ".": 4 }, unk_token: "[UNK]" },
  };
}
