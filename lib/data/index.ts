// Tokenizers and datasets for language-model training.
// defines: CharTokenizer, ByteTokenizer, tokenizerFromJSON (tokenizer), HFTokenizer (hf-tokenizer), BatchSampler,
// evaluationBatches, trainValSplit, readTextFile (dataset)
export { CharTokenizer, ByteTokenizer, tokenizerFromJSON } from "./tokenizer";
export type { Tokenizer, TokenizerJSON } from "./tokenizer";
export { HFTokenizer } from "./hf-tokenizer";
export type { HFTokenizerOptions, HFTokenizerJSON } from "./hf-tokenizer";
export { BatchSampler, evaluationBatches, trainValSplit, readTextFile } from "./dataset";
export type { Batch, BatchSamplerOptions, DataPosition, SamplingMode } from "./dataset";
