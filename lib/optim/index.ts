// Optimizers, learning-rate schedules and gradient utilities.
// defines: Optimizer, OptimizerStateDict (optimizer), SGD, clipGradNorm, gradNorm (sgd), AdamW (adamw), constantSchedule,
// warmupCosineSchedule, LRScheduler (schedule), xlstmParamGroups, splitWeightDecayNames (groups)
export { Optimizer } from "./optimizer";
export type { OptimizerStateDict, ParamGroup, ParamGroupSpec, ParamState, ParamsInput, SavedParamState } from "./optimizer";
export { SGD, clipGradNorm, gradNorm } from "./sgd";
export type { SGDOptions, SGDHyper } from "./sgd";
export { AdamW } from "./adamw";
export type { AdamWOptions, AdamWHyper } from "./adamw";
export { constantSchedule, warmupCosineSchedule, LRScheduler } from "./schedule";
export type { LRSchedule, WarmupCosineOptions } from "./schedule";
export { xlstmParamGroups, splitWeightDecayNames } from "./groups";
export type { WeightDecayGroupOptions } from "./groups";
