// Optimizers and gradient utilities.
// defines: SGD, clipGradNorm (sgd)
export { SGD, clipGradNorm } from "./sgd";
export type { SGDOptions } from "./sgd";
