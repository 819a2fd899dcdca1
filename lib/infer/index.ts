// Fused native inference for xLSTMLMModel (CPU or GPU) and for xLSTM Large on the GPU (products layer).
// defines: createInferenceSession, InferenceSession, InferenceSessionBusyError, InferenceSessionDisposedError, InferenceSessionOptions (session);
// createLargeInferenceSession, LargeInferenceSession (large-session); NativeSession (native-session: their shared calls)
export { createInferenceSession, InferenceSession, InferenceSessionBusyError, InferenceSessionDisposedError } from "./session";
export type { InferenceSessionOptions } from "./session";
export { createLargeInferenceSession, LargeInferenceSession } from "./large-session";
export { NativeSession } from "./native-session";
