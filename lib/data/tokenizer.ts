// Tokenizers (data layer): characters (vocabulary built from a text, saved with checkpoints), UTF-8 bytes
// (vocabulary 256, nothing to save), and Hugging Face tokenizer.json files (HFTokenizer in ./hf-tokenizer, through
// @huggingface/tokenizers; saved with checkpoints as the tokenizer.json object). All map text <-> Int32Array ids
// and offer a streaming decoder for generation.
import { HFTokenizer } from "./hf-tokenizer";
import type { HFTokenizerJSON } from "./hf-tokenizer";

/** The saved form of a tokenizer (stored in checkpoint metadata as JSON). */
export type TokenizerJSON = { type: "char"; vocab: string[]; unk?: string | null } | { type: "byte" } | HFTokenizerJSON;

export interface Tokenizer {
  readonly type: "char" | "byte" | "hf";
  readonly vocabSize: number;
  /** @throws RangeError for text the vocabulary cannot represent (char tokenizer without an unknown token) */
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
  /** A stateful decoder for streaming: feed one id at a time, get the text it completes ("" while incomplete). */
  streamDecoder(): { push(id: number): string; flush(): string };
  toJSON(): TokenizerJSON;
}

/**
 * One token per Unicode code point. The vocabulary is the sorted set of code points of a text, optionally with an
 * unknown token (then characters outside the vocabulary map to it instead of being an error).
 */
export class CharTokenizer implements Tokenizer {
  readonly type = "char" as const;
  readonly vocab: readonly string[];
  readonly unk: string | null;
  private readonly index = new Map<string, number>();

  /**
   * @param vocab the tokens, each one code point (or the unk token), in id order
   * @param unk a token in `vocab` that stands for unknown characters; default none
   * @throws RangeError for an empty or duplicated vocabulary, or an unk that is not in it
   */
  constructor(vocab: readonly string[], unk: string | null = null) {
    if (!Array.isArray(vocab) || vocab.length === 0) throw new RangeError("CharTokenizer: the vocabulary is empty");
    vocab.forEach((t, i) => {
      if (typeof t !== "string" || t.length === 0) throw new TypeError(`CharTokenizer: vocabulary entry ${i} must be a non-empty string`);
      if (t !== unk && [...t].length !== 1) throw new RangeError(`CharTokenizer: vocabulary entry ${i} (${JSON.stringify(t)}) is not a single character`);
      if (this.index.has(t)) throw new RangeError(`CharTokenizer: vocabulary entry ${i} (${JSON.stringify(t)}) is duplicated`);
      this.index.set(t, i);
    });
    if (unk !== null && !this.index.has(unk)) throw new RangeError(`CharTokenizer: the unknown token ${JSON.stringify(unk)} is not in the vocabulary`);
    this.vocab = Object.freeze([...vocab]);
    this.unk = unk;
  }

  /**
   * The vocabulary of `text`: its distinct characters in code-point order (plus `unk` first, when given).
   * @example CharTokenizer.fromText("hello").vocab  // ["e", "h", "l", "o"]
   */
  static fromText(text: string, options: { unk?: string } = {}): CharTokenizer {
    const set = new Set(text);
    const chars = [...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    if (options.unk !== undefined) return new CharTokenizer([options.unk, ...chars.filter((c) => c !== options.unk)], options.unk);
    return new CharTokenizer(chars);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  encode(text: string): Int32Array {
    const chars = [...text];
    const out = new Int32Array(chars.length);
    const unkId = this.unk === null ? -1 : this.index.get(this.unk)!;
    let missing: Set<string> | null = null;
    chars.forEach((c, i) => {
      const id = this.index.get(c);
      if (id !== undefined) out[i] = id;
      else if (unkId >= 0) out[i] = unkId;
      else (missing ??= new Set()).add(c);
    });
    if (missing) {
      const list = [...(missing as Set<string>)].slice(0, 10).map((c) => JSON.stringify(c)).join(", ");
      throw new RangeError(`CharTokenizer.encode: characters not in the vocabulary: ${list}${(missing as Set<string>).size > 10 ? ", ..." : ""}`);
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < ids.length; ++i) s += this.token(ids[i]);
    return s;
  }

  private token(id: number): string {
    const t = this.vocab[id];
    if (t === undefined) throw new RangeError(`CharTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.vocab.length})`);
    return t;
  }

  streamDecoder(): { push(id: number): string; flush(): string } {
    return { push: (id) => this.token(id), flush: () => "" };
  }

  toJSON(): TokenizerJSON {
    return { type: "char", vocab: [...this.vocab], unk: this.unk };
  }
}

/** One token per UTF-8 byte (vocabulary 256). Decoding replaces invalid sequences with U+FFFD. */
export class ByteTokenizer implements Tokenizer {
  readonly type = "byte" as const;
  readonly vocabSize = 256;

  encode(text: string): Int32Array {
    return Int32Array.from(Buffer.from(text, "utf8"));
  }

  decode(ids: ArrayLike<number>): string {
    const bytes = new Uint8Array(ids.length);
    for (let i = 0; i < ids.length; ++i) bytes[i] = checkByte(ids[i]);
    return new TextDecoder("utf-8").decode(bytes);
  }

  streamDecoder(): { push(id: number): string; flush(): string } {
    const dec = new TextDecoder("utf-8");
    const one = new Uint8Array(1);
    return {
      push: (id) => {
        one[0] = checkByte(id);
        return dec.decode(one, { stream: true });
      },
      flush: () => dec.decode(),
    };
  }

  toJSON(): TokenizerJSON {
    return { type: "byte" };
  }
}

function checkByte(id: number): number {
  if (!(Number.isInteger(id) && id >= 0 && id < 256)) throw new RangeError(`ByteTokenizer.decode: id ${id} is outside [0, 256)`);
  return id;
}

/**
 * Rebuild a tokenizer from its saved form.
 * @throws TypeError/RangeError naming what is wrong in `json`
 */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const j = json as TokenizerJSON;
  if (!j || typeof j !== "object") throw new TypeError("tokenizerFromJSON: expected an object with a type");
  if (j.type === "byte") return new ByteTokenizer();
  if (j.type === "char") {
    if (!Array.isArray(j.vocab)) throw new TypeError("tokenizerFromJSON: a char tokenizer needs a vocab array");
    return new CharTokenizer(j.vocab, j.unk ?? null);
  }
  if (j.type === "hf") return HFTokenizer.fromJSON(j);
  throw new RangeError(`tokenizerFromJSON: unknown tokenizer type ${JSON.stringify((j as { type?: unknown }).type)} (expected "char", "byte" or "hf")`);
}
