// Entry of the training worker thread (training layer): runs runTraining() with the options the Trainer passed and
// posts its events back; a shared flag set by the Trainer asks it to stop after the current step.
import { parentPort, workerData } from "worker_threads";
import { runTraining } from "./loop";
import type { WorkerMessage, WorkerInput } from "./index";

const port = parentPort!;
const input = workerData as WorkerInput;
const stop = new Int32Array(input.stop);
const post = (m: WorkerMessage) => port.postMessage(m);

runTraining(input.options, { emit: (event) => post({ kind: "event", event }), shouldStop: () => Atomics.load(stop, 0) !== 0 })
  .then((result) => post({ kind: "done", result }))
  .catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ kind: "error", name: err.name, message: err.message, code: (err as { code?: string }).code, stack: err.stack });
  });
