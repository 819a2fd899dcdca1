// Modules with PyTorch-style parameters and state_dict keys.
// defines: Module, StateDict (module), LSTM (lstm), sLSTM parameter layout converters (slstm-layout)
export { Module } from "./module";
export type { StateDict } from "./module";
export { LSTM } from "./lstm";
export { sLSTMLayer } from "./slstm-layer";
export type { sLSTMLayerConfig, sLSTMLayerState, sLSTMLayerStepState } from "./slstm-layer";
export { smallInit, wangInit, uniformFanIn } from "./init";
export type { LSTMOptions } from "./lstm";
export * from "./slstm-layout";
