// Modules with PyTorch-style parameters and state_dict keys.
// defines: Module (module), LSTM (lstm), sLSTMLayer (slstm-layer), mLSTMLayer (mlstm-layer; importing it lets
// stacks build mLSTM blocks), initialisers (init), LayerNorm,
// GatedFeedForward, Linear (components), xLSTMBlock (block), xLSTMBlockStack, xLSTMLMModel (stack), sLSTM
// parameter layout converters (slstm-layout)
export { Module } from "./module";
export type { StateDict } from "./module";
export { LSTM } from "./lstm";
export { sLSTMLayer } from "./slstm-layer";
export { mLSTMLayer } from "./mlstm-layer";
export type { mLSTMLayerConfig, mLSTMLayerState } from "./mlstm-layer";
export type { sLSTMLayerConfig, sLSTMLayerState, sLSTMLayerStepState } from "./slstm-layer";
export { smallInit, wangInit, uniformFanIn } from "./init";
export { LayerNorm, GatedFeedForward, Linear, projUpDim } from "./components";
export type { FeedForwardConfig } from "./components";
export { xLSTMBlock } from "./block";
export type { BlockLayer, LayerState } from "./block";
export { xLSTMBlockStack, xLSTMLMModel, resolveBlockMap, registerMlstmLayerFactory } from "./stack";
export type { xLSTMBlockStackConfig, xLSTMLMModelConfig, StackState, MlstmLayerFactory } from "./stack";
export type { LSTMOptions } from "./lstm";
export * from "./slstm-layout";
// defines: xLSTMLarge, xLSTMLargeDecoder and their config, state and checkpoint helpers (large)
export {
  xLSTMLarge,
  xLSTMLargeDecoder,
  XLSTM_LARGE_DEFAULTS,
  resolveLargeConfig,
  inferenceSchedule,
  convertLargeWeights,
  largeParameterShapes,
  largeParameterCount,
  largeStateToTensors,
  largeStateFromTensors,
  readLargeConfig,
  loadLargeCheckpoint,
  randomLargeStateDict,
  rmsNorm,
  softCap,
} from "./large";
export type {
  xLSTMLargeConfig,
  ResolvedLargeConfig,
  LargeMode,
  LargeWeightMode,
  LargeState,
  LargeBlockState,
  ScheduleSegment,
  LargeForwardOptions,
  LargeGenerateOptions,
  LargeGenerateResult,
  LargeDecoderOptions,
  DecoderForwardOptions,
} from "./large";
