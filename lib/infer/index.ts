// Fused native inference for xLSTMLMModel (products layer).
// defines: createInferenceSession, InferenceSession, InferenceSessionDisposedError, InferenceSessionOptions (session)
export { createInferenceSession, InferenceSession, InferenceSessionDisposedError } from "./session";
export type { InferenceSessionOptions } from "./session";
