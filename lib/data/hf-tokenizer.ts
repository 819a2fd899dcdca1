// Hugging Face tokenizers (data layer): a `tokenizer.json` (the format of the Rust `tokenizers` library, shipped
// with most models on the Hub, e.g. the GPT-NeoX BPE of xLSTM-7B) through @huggingface/tokenizers (pure JS, by
// Hugging Face): normalizers, pre-tokenizers, BPE / WordPiece / Unigram / WordLevel models, post-processors,
// decoders, added and special tokens.
// defines: HFTokenizer (implements Tokenizer: encode, decode, streamDecoder, toJSON; fromFile, fromJSON),
// HFTokenizerOptions, HFTokenizerJSON.
//
// Semantics follow the Rust library's defaults, not transformers': encode adds no special tokens (a language model
// trains on and continues raw text; `addSpecialTokens: true` lets the post-processor add e.g. BOS), decode keeps
// special tokens (`skipSpecialTokens` drops them) and never "cleans up" spaces before punctuation. Ids that name no
// token (a model's vocabulary is often padded beyond its tokenizer's, e.g. 50304 vs 50277 for xLSTM-7B) decode to
// nothing, as in the Rust library, so sampling such an id never stops a generation.
// The streaming decoder is the Rust library's DecodeStream: it decodes a window of the last tokens and emits only
// text that grew and does not end in U+FFFD, so a multi-byte character split over byte-level or byte-fallback
// tokens appears once it is complete, and decoders that depend on context (Metaspace's leading space) see it.
// Pushing every id and then flush() gives exactly decode() of all the ids.
import * as fs from "fs";
import { Tokenizer as HFCore } from "@huggingface/tokenizers";
import { CorruptFileError } from "../errors";
import type { Tokenizer } from "./tokenizer";

/** How an HFTokenizer encodes and decodes (saved with it). */
export interface HFTokenizerOptions {
  /** Let the post-processor add special tokens (BOS, CLS, ...) when encoding. Default false. */
  addSpecialTokens?: boolean;
  /** Leave special tokens out when decoding. Default false. */
  skipSpecialTokens?: boolean;
  /** The model's tokenizer_config.json (optional: unk/eos tokens for old formats, clean_up_tokenization_spaces). */
  config?: Record<string, unknown>;
}

/** The saved form: the tokenizer.json object itself (so checkpoints are self-contained), or a path to one. */
export type HFTokenizerJSON = ({ type: "hf"; json: Record<string, unknown> } | { type: "hf"; file: string }) & HFTokenizerOptions;

/** Model types of tokenizer.json this package supports. */
const MODEL_TYPES = ["BPE", "WordPiece", "Unigram", "WordLevel"];

/** tokenizer.json files larger than this are refused (the largest published ones are ~30 MB). */
const MAX_FILE_BYTES = 1 << 30;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Why `json` is not a tokenizer.json this package can use, or null. */
function unsupportedReason(json: unknown): string | null {
  if (!isObject(json)) return `expected a JSON object, got ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`;
  const model = json.model;
  if (!isObject(model)) return `no "model" object (is this a tokenizer.json of the Hugging Face tokenizers library?)`;
  if (model.type !== undefined && !MODEL_TYPES.includes(model.type as string))
    return `model type ${JSON.stringify(model.type)} is not supported (supported: ${MODEL_TYPES.join(", ")})`;
  if (!isObject(model.vocab) && !Array.isArray(model.vocab)) return `model.vocab is missing or not an object/array`;
  if (model.type === "BPE" && !Array.isArray(model.merges)) return `a BPE model needs a "merges" array`;
  if (json.added_tokens !== undefined && json.added_tokens !== null && !Array.isArray(json.added_tokens)) return `"added_tokens" must be an array`;
  return null;
}

/**
 * A Hugging Face `tokenizer.json` tokenizer (see the file header for the encode/decode conventions).
 * @example
 *   const tok = HFTokenizer.fromFile("xlstm-7b/tokenizer.json");
 *   const ids = tok.encode("Hello world");   // Int32Array
 *   tok.decode(ids);                         // "Hello world"
 */
export class HFTokenizer implements Tokenizer {
  readonly type = "hf" as const;
  /** One more than the largest token id (model vocabulary and added tokens). */
  readonly vocabSize: number;
  /** The tokenizer.json object. */
  readonly json: Readonly<Record<string, unknown>>;
  readonly addSpecialTokens: boolean;
  readonly skipSpecialTokens: boolean;
  /** The tokenizer_config.json given, if any. */
  readonly config: Readonly<Record<string, unknown>> | null;
  /** Where it was read from (for messages), or null. */
  readonly source: string | null;
  readonly #core: HFCore;

  /**
   * @param json a parsed tokenizer.json
   * @param source the file it came from, for messages
   * @throws TypeError/RangeError naming `source` (or "tokenizer.json") and the reason for an unsupported object
   */
  constructor(json: Record<string, unknown>, options: HFTokenizerOptions = {}, source: string | null = null) {
    const where = source ?? "HFTokenizer";
    const reason = unsupportedReason(json);
    if (reason) throw new RangeError(`${where}: not a supported Hugging Face tokenizer.json: ${reason}`);
    for (const k of ["addSpecialTokens", "skipSpecialTokens"] as const)
      if (options[k] !== undefined && typeof options[k] !== "boolean") throw new TypeError(`${where}: option ${k} must be a boolean, got ${typeof options[k]}`);
    if (options.config !== undefined && !isObject(options.config)) throw new TypeError(`${where}: option config must be an object (tokenizer_config.json)`);
    const model = json.model as Record<string, unknown>;
    // the library reads these keys unconditionally; the Rust library writes them all, older files may not
    const filled = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: json.added_tokens ?? [] };
    // WordLevel has no class of its own in the library: its vocabulary lookup is the "Legacy" model, which takes the
    // unknown token from the config
    const config: Record<string, unknown> = { clean_up_tokenization_spaces: false, ...(options.config ?? {}) };
    if (model.type === "WordLevel" && config.unk_token === undefined && typeof model.unk_token === "string") config.unk_token = model.unk_token;
    let core: HFCore;
    try {
      core = new HFCore(filled, config);
    } catch (e) {
      throw new RangeError(`${where}: not a supported Hugging Face tokenizer.json: ${(e as Error).message.split("\n")[0]}`);
    }
    let maxId = -1;
    const vocab = core.get_vocab(true);
    for (const id of vocab.values()) {
      if (!Number.isSafeInteger(id) || id < 0 || id >= 2 ** 31) throw new RangeError(`${where}: token id ${String(id)} is not an integer in [0, 2^31)`);
      if (id > maxId) maxId = id;
    }
    if (maxId < 0) throw new RangeError(`${where}: the vocabulary is empty`);
    this.#core = core;
    this.vocabSize = maxId + 1;
    this.json = json;
    this.addSpecialTokens = options.addSpecialTokens ?? false;
    this.skipSpecialTokens = options.skipSpecialTokens ?? false;
    this.config = options.config ?? null;
    this.source = source;
  }

  /**
   * Read a tokenizer.json file.
   * @throws Error naming the file when it cannot be read or is not a regular file; CorruptFileError (naming the file)
   *   when it is not JSON or not a supported tokenizer.json. Every message is one line.
   */
  static fromFile(file: string, options: HFTokenizerOptions = {}): HFTokenizer {
    if (typeof file !== "string" || file.length === 0) throw new TypeError("HFTokenizer.fromFile: path must be a non-empty string");
    let text: string;
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | (process.platform === "win32" ? 0 : fs.constants.O_NONBLOCK ?? 0));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (e as Error).message;
      throw new Error(`cannot read tokenizer ${file}: ${why}`);
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw new Error(`cannot read tokenizer ${file}: it is a directory`);
      if (!st.isFile()) throw new Error(`cannot read tokenizer ${file}: not a regular file`);
      if (st.size > MAX_FILE_BYTES) throw new CorruptFileError(file, `is ${st.size} bytes, more than a tokenizer.json can reasonably be (${MAX_FILE_BYTES})`);
      try {
        text = fs.readFileSync(fd, "utf8");
      } catch (e) {
        throw new Error(`cannot read tokenizer ${file}: ${(e as Error).message}`);
      }
    } finally {
      fs.closeSync(fd);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new CorruptFileError(file, `is not valid JSON (${(e as Error).message.split("\n")[0]}); expected a Hugging Face tokenizer.json`);
    }
    try {
      return new HFTokenizer(json as Record<string, unknown>, options, file);
    } catch (e) {
      throw new CorruptFileError(file, (e as Error).message.slice(file.length + 2));
    }
  }

  /** From the saved form (a tokenizer.json object or a path, plus options). */
  static fromJSON(j: HFTokenizerJSON): HFTokenizer {
    if (!isObject(j) || j.type !== "hf") throw new TypeError(`HFTokenizer.fromJSON: expected {type: "hf", json} or {type: "hf", file}`);
    const options: HFTokenizerOptions = { addSpecialTokens: j.addSpecialTokens, skipSpecialTokens: j.skipSpecialTokens, config: j.config };
    if ("json" in j && j.json !== undefined) {
      if (!isObject(j.json)) throw new TypeError(`HFTokenizer.fromJSON: "json" must be the tokenizer.json object`);
      return new HFTokenizer(j.json, options, "tokenizer.json");
    }
    if ("file" in j && typeof j.file === "string") return HFTokenizer.fromFile(j.file, options);
    throw new TypeError(`HFTokenizer.fromJSON: a "hf" tokenizer needs "json" (the tokenizer.json object) or "file" (its path)`);
  }

  /**
   * Token ids of `text` (special tokens only with addSpecialTokens).
   * @throws RangeError when a piece has no id (not in the vocabulary and the model has no unknown token)
   */
  encode(text: string): Int32Array {
    if (typeof text !== "string") throw new TypeError(`HFTokenizer.encode: text must be a string, got ${typeof text}`);
    const enc = this.#core.encode(text, { add_special_tokens: this.addSpecialTokens });
    const out = new Int32Array(enc.ids.length);
    let missing: string[] | null = null;
    enc.ids.forEach((id, i) => {
      if (id === undefined || id === null || !Number.isInteger(id)) (missing ??= []).push(enc.tokens[i]);
      else out[i] = id;
    });
    if (missing) {
      const list = [...new Set(missing as string[])].slice(0, 10).map((t) => JSON.stringify(t)).join(", ");
      throw new RangeError(`HFTokenizer.encode: pieces not in the vocabulary (and no unknown token): ${list}`);
    }
    return out;
  }

  #checkId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id < 2 ** 31)) throw new RangeError(`HFTokenizer.decode: id ${id} is not an integer in [0, 2^31)`);
  }

  /**
   * The text of `ids` (see the file header for special tokens and spaces); ids that name no token add nothing.
   * @throws RangeError for ids that are not integers in [0, 2^31)
   */
  decode(ids: ArrayLike<number>): string {
    const list: number[] = [];
    for (let i = 0; i < ids.length; ++i) {
      const id = Number(ids[i]);
      this.#checkId(id);
      if (this.#core.id_to_token(id) !== undefined) list.push(id);
    }
    if (list.length === 0) return "";
    return this.#core.decode(list, { skip_special_tokens: this.skipSpecialTokens });
  }

  /**
   * A stateful decoder for streaming (the Rust library's DecodeStream): push(id) returns the text that id completes
   * ("" while a character is incomplete); flush() returns what is left. The concatenation equals decode(all ids).
   */
  streamDecoder(): { push(id: number): string; flush(): string } {
    let window: number[] = [];
    let prefix = "";
    let prefixIndex = 0;
    // the whole stream, for the rare decoder whose window decode does not extend its prefix
    let all: number[] = [];
    let emitted = "";
    const emit = (text: string): string => {
      emitted += text;
      return text;
    };
    const fromAll = (final: boolean): string => {
      const full = this.decode(all);
      if (!final && full.endsWith("\uFFFD")) return "";
      const out = full.startsWith(emitted) ? full.slice(emitted.length) : "";
      // restart the window on the last few ids (context for the next decode), all of them emitted
      window = all.slice(Math.max(0, all.length - 8));
      prefix = this.decode(window);
      prefixIndex = window.length;
      return emit(out);
    };
    return {
      push: (id: number): string => {
        this.#checkId(id);
        window.push(id);
        all.push(id);
        const s = this.decode(window);
        if (s.length > prefix.length && !s.endsWith("\uFFFD")) {
          if (!s.startsWith(prefix)) return fromAll(false);
          const text = s.slice(prefix.length);
          const next = window.length - prefixIndex;
          window = window.slice(prefixIndex);
          prefix = this.decode(window);
          prefixIndex = next;
          return emit(text);
        }
        return "";
      },
      flush: (): string => {
        let out = "";
        if (window.length) {
          const s = this.decode(window);
          if (s.startsWith(prefix)) out = emit(s.slice(prefix.length));
          else out = fromAll(true);
        }
        window = [];
        all = [];
        prefix = "";
        prefixIndex = 0;
        emitted = "";
        return out;
      },
    };
  }

  /** The id of a token string (vocabulary or added token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#core.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.#core.id_to_token(id);
  }

  toJSON(): HFTokenizerJSON {
    const out: HFTokenizerJSON = { type: "hf", json: this.json as Record<string, unknown> };
    if (this.addSpecialTokens) out.addSpecialTokens = true;
    if (this.skipSpecialTokens) out.skipSpecialTokens = true;
    if (this.config) out.config = this.config as Record<string, unknown>;
    return out;
  }
}
