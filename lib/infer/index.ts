// Fused native inference for xLSTMLMModel (products layer).
// defines: createInferenceSession, InferenceSession, InferenceSessionBusyError, InferenceSessionDisposedError, InferenceSessionOptions (session)
export { createInferenceSession, InferenceSession, InferenceSessionBusyError, InferenceSessionDisposedError } from "./session";
export type { InferenceSessionOptions } from "./session";
