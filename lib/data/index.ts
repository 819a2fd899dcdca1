// Tokenizers and datasets for language-model training.
// defines: CharTokenizer, ByteTokenizer, tokenizerFromJSON (tokenizer), BatchSampler, evaluationBatches,
// trainValSplit, readTextFile (dataset)
export { CharTokenizer, ByteTokenizer, tokenizerFromJSON } from "./tokenizer";
export type { Tokenizer, TokenizerJSON } from "./tokenizer";
export { BatchSampler, evaluationBatches, trainValSplit, readTextFile } from "./dataset";
export type { Batch, BatchSamplerOptions, DataPosition, SamplingMode } from "./dataset";
