// Layer 5: the device inference session (csrc/binding/cuda_infer_session.*): createInferenceSession on a model on
// the GPU. Checked against the CPU session (itself checked against model.step in test/56) within 1e-4 on the logits
// and states, for the four model cases of test/56 (mixed blocks, tied, "lstm", conv 0/2/4, biases, gelu / swish /
// relu^2 FFNs, no post norm, B 1-3), a prefill of several chunks, and states moving between the session and the
// Tensor path on the GPU; generate() on a GPU model goes through it; device memory stays flat; errors name what was
// wrong. Without a GPU these run on the emulated device (test/24: XLSTM_CUDA_EMULATE, where a CUDA build replays the
// kernels' own code on the host) and are skipped here with the reason. The xLSTM Large device session is checked the
// same way against xLSTMLarge.step on the CPU (weight modes single / fused, biases, soft caps, no out norm, float32 and
// bfloat16 weights, B 1-2), with its state moving to and from the Tensor path and generate() on a GPU model.
import { strict as assert } from "assert";
import { backends, cuda, generate, generateBatch, Generator, infer, nn, noGrad, Tensor } from "../lib";
import { native } from "../lib/native";
import { settledDeviceBytes } from "./support/cuda";
import { assertLogitsClose, baseConfig, CASES, column, fusedSteps, makeModel, tensorSteps, tokens } from "./support/infer-cases";

const available = cuda.isAvailable();
const itCuda = available ? it : (t: string, fn: () => void) => it.skip(`${t} [skipped: ${cuda.unavailableReason()}]`, fn);

const S = 24;

/** The same model twice (same seed): one left on the CPU, one moved to the GPU. */
function twins(config: nn.xLSTMLMModelConfig, seed: number): { cpu: nn.xLSTMLMModel; gpu: nn.xLSTMLMModel } {
  const gpu = makeModel(config, seed);
  gpu.to("cuda");
  return { cpu: makeModel(config, seed), gpu };
}

function assertStatesClose(got: nn.StackState, want: nn.StackState, what: string): void {
  const walk = (g: unknown, w: unknown, path: string) => {
    if (w instanceof Tensor) {
      assert.ok(g instanceof Tensor, `${what}: ${path} missing`);
      assert.equal(g.device, "cuda", `${what}: ${path} should be a CUDA tensor`);
      assert.deepEqual(g.shape, w.shape, `${what}: ${path} shape`);
      assertLogitsClose([g.cpu().f32()], [w.f32()], `${what}: ${path}`);
    } else if (w && typeof w === "object") for (const k of Object.keys(w)) walk((g as Record<string, unknown>)[k], (w as Record<string, unknown>)[k], `${path}.${k}`);
    else assert.equal(g, w, `${what}: ${path}`);
  };
  walk(got, want, "state");
}

describe("57 device inference sessions on the GPU", function () {
  this.timeout(300000);

  for (const [ci, c] of CASES.entries()) {
    itCuda(`${c.name}: prefill and steps follow the CPU session within 1e-4 (logits and every state part)`, () => {
      const { cpu, gpu } = twins(c.config, 10 + ci);
      const V = c.config.vocab_size, tok = tokens(c.B, S, V, 20 + ci);
      const sc = infer.createInferenceSession(cpu, { batch: c.B }), sg = infer.createInferenceSession(gpu, { batch: c.B });
      try {
        assert.equal(sg.device, "cuda");
        assert.equal(sc.device, "cpu");
        const half = S / 2;
        const prompt = Int32Array.from({ length: c.B * half }, (_, i) => tok[Math.floor(i / half) * S + (i % half)]);
        assertLogitsClose([sg.prefill(prompt, half)], [sc.prefill(prompt, half)], "prefill");
        const rest = Int32Array.from({ length: c.B * half }, (_, i) => tok[Math.floor(i / half) * S + half + (i % half)]);
        assertLogitsClose(fusedSteps(sg, rest, c.B, half), fusedSteps(sc, rest, c.B, half), "steps");
        assertStatesClose(sg.getState(), sc.getState(), "state");
        // reset: back to the zero state (the first step again)
        sg.reset();
        sc.reset();
        assertLogitsClose([sg.step(column(tok, c.B, S, 0))], [sc.step(column(tok, c.B, S, 0))], "after reset");
      } finally {
        sg.dispose();
        sc.dispose();
      }
    });
  }

  // the chunkwise mLSTM cell's forms: tiled (the default at these heads), composed of grouped GEMMs with the states
  // walked or scanned (the setters need a CUDA build); B 1 with 300 tokens: chunks of 256 (4 of the cell's chunks of
  // 64) and a 44-token tail under 64 positions (the recurrent form)
  const prefillCases: { B: number; L: number; form?: "composed"; states?: "walk" | "scan" }[] = [{ B: 3, L: 100 }, { B: 3, L: 100, form: "composed", states: "walk" }, { B: 3, L: 100, form: "composed", states: "scan" }, { B: 1, L: 300 }];
  for (const pc of prefillCases) {
    const what = `B = ${pc.B}, ${pc.L} tokens${pc.form ? `, the ${pc.form} form with the states ${pc.states === "scan" ? "scanned" : "walked"}` : ""}`;
    const needsBuild = pc.form !== undefined && !backends().cuda.compiled;
    (needsBuild ? (t: string, fn: () => void) => it.skip(`${t} [skipped: the mLSTM form setters need a CUDA build]`, fn) : itCuda)(`a prefill of several chunks (${what}) equals the CPU session's and stepping's`, () => {
      const c = CASES[1];
      const { cpu, gpu } = twins(c.config, 11);
      const B = pc.B, L = pc.L, tok = tokens(B, L, c.config.vocab_size, 77);
      const prevForm = pc.form ? native.cudaSetMlstmForm(pc.form) : null, prevStates = pc.states ? native.cudaSetMlstmStates(pc.states) : null;
      const sc = infer.createInferenceSession(cpu, { batch: B }), sg = infer.createInferenceSession(gpu, { batch: B });
      const st = infer.createInferenceSession(gpu, { batch: B });
      try {
        const want = sc.prefill(tok, L);
        assertLogitsClose([sg.prefill(tok, L)], [want], "chunked prefill vs CPU");
        const steps = fusedSteps(st, tok, B, L);
        assertLogitsClose([steps[L - 1]], [want], "chunked prefill vs L device steps");
        assertStatesClose(sg.getState(), sc.getState(), "state after the chunked prefill");
      } finally {
        for (const s of [sc, sg, st]) s.dispose();
        if (prevForm) native.cudaSetMlstmForm(prevForm);
        if (prevStates) native.cudaSetMlstmStates(prevStates);
      }
    });
  }

  itCuda("states move between the device session and model.step on CUDA tensors, both ways", () => {
    const c = CASES[0];
    const { gpu } = twins(c.config, 10);
    const V = c.config.vocab_size, tok = tokens(c.B, S, V, 20);
    const ref = noGrad(() => cuda.scope(() => {
      const r = tensorSteps(gpu, tok, c.B, S);
      return { logits: r.logits };
    }));
    const s = infer.createInferenceSession(gpu, { batch: c.B });
    try {
      const mid = 10;
      const first = Int32Array.from({ length: c.B * mid }, (_, i) => tok[Math.floor(i / mid) * S + (i % mid)]);
      const rest = Int32Array.from({ length: c.B * (S - mid) }, (_, i) => tok[Math.floor(i / (S - mid)) * S + mid + (i % (S - mid))]);
      // model.step's CUDA state after `mid` tokens -> the session
      const tensorState = tensorSteps(gpu, first, c.B, mid).state;
      s.setState(tensorState);
      assertLogitsClose(fusedSteps(s, rest, c.B, S - mid), ref.logits.slice(mid), "Tensor-path state -> device session");
      // the session's state (CUDA tensors) -> model.step on the GPU
      s.reset();
      fusedSteps(s, first, c.B, mid);
      assertLogitsClose(tensorSteps(gpu, rest, c.B, S - mid, s.getState()).logits, ref.logits.slice(mid), "device session state -> model.step");
    } finally {
      s.dispose();
    }
  });

  itCuda("stepAsync / prefillAsync give step's logits; generate() on a GPU model runs the device session", async () => {
    const c = CASES[3];
    const { cpu, gpu } = twins(c.config, 13);
    const tok = tokens(c.B, 8, c.config.vocab_size, 5);
    const a = infer.createInferenceSession(gpu, { batch: c.B }), b = infer.createInferenceSession(gpu, { batch: c.B });
    try {
      assertLogitsClose([await a.prefillAsync(tok, 8)], [b.prefill(tok, 8)], "prefillAsync");
      const t = column(tok, c.B, 8, 3);
      assertLogitsClose([await a.stepAsync(t)], [b.step(t)], "stepAsync");
    } finally {
      a.dispose();
      b.dispose();
    }
    const ids = async (m: nn.xLSTMLMModel, fused: boolean) => {
      const out: number[] = [];
      for await (const x of generate(m, [1, 2, 3, 4], { maxTokens: 10, temperature: 0, fused })) out.push(x.id);
      return out;
    };
    const want = await ids(cpu, true);
    assert.deepEqual(await ids(gpu, true), want, "generate on the GPU (device session) vs the CPU");
    assert.deepEqual(await ids(gpu, false), want, "generate on the GPU (Tensor path) vs the CPU");
  });

  itCuda("device memory: a session holds nativeBytes of it and gives all of it back (dispose, repeated runs flat)", async () => {
    const c = CASES[0];
    const { gpu } = twins(c.config, 10);
    const tok = tokens(c.B, 6, c.config.vocab_size, 3);
    const before = await settledDeviceBytes();  // (the session's own calls below make no garbage)
    const s = infer.createInferenceSession(gpu, { batch: c.B });
    const held = cuda.memoryStats().allocatedBytes - before;
    assert.ok(s.nativeBytes > 0 && held >= s.nativeBytes, `allocated ${held} bytes for a session of ${s.nativeBytes}`);
    s.prefill(tok, 6);
    const after1 = cuda.memoryStats().allocatedBytes;
    for (let i = 0; i < 20; ++i) s.step(column(tok, c.B, 6, i % 6));
    s.refresh();
    assert.equal(cuda.memoryStats().allocatedBytes, after1, "steps and refresh allocate nothing that stays");
    s.dispose();
    assert.equal(cuda.memoryStats().allocatedBytes, before, "dispose gives the session's device memory back");
  });

  itCuda("decode steps from CUDA graphs (cuda.setSessionGraphs) equal the eager steps bit for bit, across prefill, setState and reset; memory back on dispose", async () => {
    const c = CASES[1];  // tied, sLSTM "lstm", conv 2, B 3: mLSTM and sLSTM blocks, both with conv windows
    const { gpu } = twins(c.config, 11);
    const B = c.B, L = 16, tok = tokens(B, L, c.config.vocab_size, 55);
    const before = cuda.setSessionGraphs(false);
    assert.equal(before, false, "graphs are off by default");
    const bytes0 = await settledDeviceBytes();
    const eager = infer.createInferenceSession(gpu, { batch: B }), graphed = infer.createInferenceSession(gpu, { batch: B });
    const withGraphs = <T>(fn: () => T): T => {
      cuda.setSessionGraphs(true);
      try {
        return fn();
      } finally {
        cuda.setSessionGraphs(false);
      }
    };
    try {
      assert.equal(graphed.cudaGraphs, "off");
      const prompt = Int32Array.from({ length: B * 3 }, (_, i) => tok[Math.floor(i / 3) * L + (i % 3)]);
      const run = (s: { step(t: Int32Array): Float32Array }, from: number, to: number) => {
        const out: Float32Array[] = [];
        for (let t = from; t < to; ++t) out.push(s.step(column(tok, B, L, t)));
        return out;
      };
      // a prompt (eager: more than one token), then steps: two eager (one per parity), the next two captured, the
      // rest launched from the graphs
      assert.deepEqual(withGraphs(() => graphed.prefill(prompt, 3)), eager.prefill(prompt, 3), "prefill");
      assert.deepEqual(withGraphs(() => run(graphed, 3, 12)), run(eager, 3, 12), "steps from graphs vs eager steps");
      const status = withGraphs(() => graphed.cudaGraphs);
      assert.equal(status, "on: 2 graphs", "one graph per parity of the state buffers");
      // a state set from the eager session, then steps from the graphs
      graphed.setState(eager.getState());
      assert.deepEqual(withGraphs(() => run(graphed, 12, 14)), run(eager, 12, 14), "after setState");
      if (backends().cuda.compiled) {
        // a change of the kernel settings drops the graphs (they keep their capture's kernel choices)
        native.cudaSetGemmSplitK(native.cudaSetGemmSplitK(false));
        assert.deepEqual(withGraphs(() => run(graphed, 14, 15)), run(eager, 14, 15), "the step after a settings change");
        assert.equal(withGraphs(() => graphed.cudaGraphs), "on: 0 graphs", "the graphs were dropped; that step ran eagerly");
        assert.deepEqual(withGraphs(() => run(graphed, 15, 16)), run(eager, 15, 16), "after a settings change");
      }
      // reset and a prefill of odd length (the mLSTM states flip, the conv windows do not: new parities, new graphs)
      graphed.reset();
      eager.reset();
      assert.deepEqual(withGraphs(() => graphed.prefill(tok.subarray(0, B * 5), 5)), eager.prefill(tok.subarray(0, B * 5), 5), "prefill after reset");
      assert.deepEqual(withGraphs(() => run(graphed, 5, 14)), run(eager, 5, 14), "steps after reset and prefill");
      const n = Number(/^on: (\d+) graphs$/.exec(withGraphs(() => graphed.cudaGraphs))?.[1]);
      assert.ok(n >= 2, `graphs captured: ${withGraphs(() => graphed.cudaGraphs)}`);
      const onCpu = infer.createInferenceSession(makeModel(c.config, 11), { batch: B });
      assert.equal(onCpu.cudaGraphs, "cpu");
      onCpu.dispose();
    } finally {
      cuda.setSessionGraphs(before);
      eager.dispose();
      graphed.dispose();
    }
    assert.equal(await settledDeviceBytes(), bytes0, "dispose frees the sessions and their graphs' scratch");
  });

  itCuda("a device session reads the model's weights as they are now: after loadStateDict in place (sLSTM biases included), its steps equal a new session's bit for bit", () => {
    const c = CASES[1];  // mLSTM and sLSTM blocks
    const { gpu } = twins(c.config, 13);
    const B = c.B, L = 4, tok = tokens(B, L, c.config.vocab_size, 71);
    const s = infer.createInferenceSession(gpu, { batch: B });
    try {
      const old = Array.from({ length: L }, (_, t) => s.step(column(tok, B, L, t)));
      const gen = new Generator(5);
      const sd = gpu.stateDict();
      gpu.loadStateDict(new Map([...sd].map(([k, v]) => [k, Tensor.randn(v.shape, { generator: gen, std: 0.3 })])));
      assert.ok([...sd.keys()].some((k) => /slstm_cell._bias_$/.test(k)), "the model has an sLSTM bias");
      s.reset();
      const fresh = infer.createInferenceSession(gpu, { batch: B });
      try {
        for (let t = 0; t < L; ++t) {
          const x = column(tok, B, L, t), got = s.step(x);
          assert.deepEqual(got, fresh.step(x), `step ${t}`);
          assert.notDeepEqual(got, old[t], `step ${t}: the new weights change the logits`);
        }
      } finally {
        fresh.dispose();
      }
    } finally {
      s.dispose();
    }
  });

  // the capture refusal is a hook of the emulated device (a real one does not fail a capture on demand)
  const emulated = available && backends().cuda.emulated;
  (emulated ? it : (t: string, fn: () => void) => it.skip(`${t} [skipped: ${available ? "a real GPU: the capture refusal hook needs the emulated device" : cuda.unavailableReason()}]`, fn))(
    "a failed capture: that step runs eagerly, a new capture is tried after 32 more steps that need one; after 3 failures none (captured graphs still launch), until a kernel setting changes; steps equal the eager ones throughout",
    () => {
      const c = CASES[1];
      const { gpu } = twins(c.config, 12);
      const B = c.B, L = 160, tok = tokens(B, L, c.config.vocab_size, 57);
      const before = cuda.setSessionGraphs(false);
      const sessions: { dispose(): void }[] = [];
      // a graphed session and its eager twin from the zero state; n steps of both (bit-equal logits), then the
      // graphed one's status
      const pair = () => {
        const eager = infer.createInferenceSession(gpu, { batch: B }), graphed = infer.createInferenceSession(gpu, { batch: B });
        sessions.push(eager, graphed);
        let t = 0;
        return (n: number): string => {
          for (const end = t + n; t < end; ++t) {
            const x = column(tok, B, L, t % L);
            cuda.setSessionGraphs(true);
            let got: Float32Array;
            try {
              got = graphed.step(x);
            } finally {
              cuda.setSessionGraphs(false);
            }
            assert.deepEqual(got, eager.step(x), `step ${t}`);
          }
          cuda.setSessionGraphs(true);
          try {
            return graphed.cudaGraphs;
          } finally {
            cuda.setSessionGraphs(false);
          }
        };
      };
      const refused = /refused by the emulated device/;
      try {
        // one failure, then a retry that works
        let steps = pair();
        assert.equal(steps(2), "on: 0 graphs", "the first step from each parity runs eagerly");
        native.cudaEmulateRefuseCaptures(1);
        const failed = steps(1);
        assert.match(failed, /^on: 0 graphs; capture failed \(1 of 3, retrying\): /);
        assert.match(failed, refused, "the status names the reason");
        assert.equal(steps(32), failed, "32 more steps that need a capture run eagerly");
        assert.equal(steps(1), "on: 1 graphs", "then a capture is tried again");
        assert.equal(steps(3), "on: 2 graphs");
        // three failures (32 steps apart): no more captures
        steps = pair();
        native.cudaEmulateRefuseCaptures(3);
        assert.equal(steps(2), "on: 0 graphs");
        assert.match(steps(1), /^on: 0 graphs; capture failed \(1 of 3, retrying\)/);
        assert.match(steps(33), /^on: 0 graphs; capture failed \(2 of 3, retrying\)/);
        const given = steps(33);
        assert.match(given, /^failed: /);
        assert.match(given, refused);
        assert.equal(steps(40), given, "no capture after the third failure");
        // failures after one parity's graph was captured: it keeps launching (those steps need no capture, so the
        // retries come every 66 steps), the other parity runs eagerly
        steps = pair();
        assert.equal(steps(3), "on: 1 graphs");
        native.cudaEmulateRefuseCaptures(3);
        assert.match(steps(1), /^on: 1 graphs; capture failed \(1 of 3, retrying\): /);
        assert.match(steps(65), /^on: 1 graphs; capture failed \(1 of 3, retrying\): /);
        assert.match(steps(1), /^on: 1 graphs; capture failed \(2 of 3, retrying\): /);
        assert.match(steps(66), /^on: 1 graphs; capture failed \(3 of 3, no more tries\): /);
        assert.match(steps(70), /^on: 1 graphs; capture failed \(3 of 3, no more tries\): /);
        // a capture refused after its work ran (the emulated capture runs it; as one whose memory is refused at its
        // end): that step stands and is not run again (the sLSTM block's state would move twice)
        steps = pair();
        assert.equal(steps(2), "on: 0 graphs");
        native.cudaEmulateRefuseCaptures(1, true);
        assert.match(steps(1), /^on: 0 graphs; capture failed \(1 of 3, retrying\): refused by the emulated device after the work ran/);
        assert.equal(steps(36), "on: 2 graphs", "and the steps after it follow the eager session");
        if (backends().cuda.compiled) {
          // a kernel setting changed: the graphs and the failures are forgotten, new graphs captured
          native.cudaSetGemmSplitK(native.cudaSetGemmSplitK(false));
          assert.equal(steps(4), "on: 2 graphs");
        }
      } finally {
        native.cudaEmulateRefuseCaptures(0);
        cuda.setSessionGraphs(before);
        for (const s of sessions) s.dispose();
      }
    },
  );

  (available ? it.skip : it)(`without a GPU a device session is refused, naming the reason${available ? " [skipped: CUDA is available]" : ""}`, () => {
    const cfg = { vocabSize: 5, embeddingDim: 4, postNorm: false, blocks: [] };
    assert.throws(() => native.inferCreate(cfg, {}, 1, true), (e: Error) => !(e instanceof TypeError) && /^inferCreate: CUDA is not available: /.test(e.message));
    assert.ok(native.inferCreate(cfg, { "token_embedding.weight": new Float32Array(20), "lm_head.weight": new Float32Array(20) }, 1, false), "the CPU session needs no GPU");
  });

  itCuda("bad models and parameters are refused by name (mixed devices, a model moved, host arrays or freed or short buffers)", () => {
    const config = baseConfig({ num_blocks: 1, slstm_at: [] });
    const { gpu } = twins(config, 3);
    const s = infer.createInferenceSession(gpu);
    try {
      // one parameter back on the CPU: the model is on two devices
      const mixed = makeModel(config, 3);
      mixed.to("cuda");
      mixed.lm_head._moveInPlace("cpu");
      assert.throws(() => infer.createInferenceSession(mixed), (e: Error) => e instanceof TypeError && /createInferenceSession: parameter lm_head.weight is on cpu but others are on cuda/.test(e.message));
      mixed.to("cpu");
      gpu.to("cpu");
      assert.throws(() => s.refresh(), (e: Error) => e instanceof TypeError && /InferenceSession.refresh: the model moved from cuda to cpu/.test(e.message));
      gpu.to("cuda");
      const host: Record<string, Float32Array> = {};
      for (const [k, t] of gpu.stateDict()) host[k] = t.cpu().f32();
      const cfg = { vocabSize: config.vocab_size, embeddingDim: config.embedding_dim!, postNorm: true, blocks: [{ kind: "mlstm" as const, numHeads: 2, innerDim: 64, qkvBlocksize: 4, convKernel: 4, ffn: null }] };
      assert.throws(() => native.inferCreate(cfg, host, 1, true), (e: Error) => e instanceof TypeError && /inferCreate: params\["token_embedding.weight"\] must be a device buffer from cudaMalloc, got Float32Array/.test(e.message));
      const small = native.cudaMalloc(8);
      const dev: Record<string, unknown> = {};
      for (const [k, t] of gpu.stateDict()) dev[k] = t._buffer("test");
      dev["lm_head.weight"] = small;
      assert.throws(() => native.inferCreate(cfg, dev as never, 1, true), (e: Error) => e instanceof RangeError && /params\["lm_head.weight"\] holds 8 bytes, expected 4\*V\*E/.test(e.message));
      native.cudaFree(small);
      assert.throws(() => native.inferCreate(cfg, { ...dev, "lm_head.weight": small } as never, 1, true), (e: Error) => e instanceof TypeError && /already freed/.test(e.message));
    } finally {
      s.dispose();
    }
  });
  // ---- xLSTM Large (lib/infer/large-session.ts)
  const TINY_LARGE = { embedding_dim: 32, num_heads: 2, num_blocks: 2, vocab_size: 40, chunk_size: 16, mode: "inference" };
  const LARGE_CASES = [
    { name: "single weights, float32, B = 1", over: {}, B: 1, bf16: false },
    { name: "fused weights with biases, gate and logit soft caps, float32, B = 2", over: { use_bias: true, weight_mode: "fused", gate_soft_cap: 15, output_logit_soft_cap: 30 }, B: 2, bf16: false },
    { name: "single weights, bfloat16, B = 2", over: {}, B: 2, bf16: true },
    { name: "fused weights, no out norm, bfloat16, B = 1", over: { weight_mode: "fused", add_out_norm: false }, B: 1, bf16: true },
  ] as const;

  /** The same xLSTMLarge twice (parameters moved off their initial values): one on the CPU, one on the GPU. */
  function largeTwins(over: object, bf16: boolean): { cpu: nn.xLSTMLarge; gpu: nn.xLSTMLarge } {
    const make = () => {
      const m = new nn.xLSTMLarge({ ...TINY_LARGE, ...over } as nn.xLSTMLargeConfig, { generator: new Generator(3) });
      const g = new Generator(9);
      for (const p of m.parameters()) {
        const a = p.f32();
        for (let i = 0; i < a.length; ++i) a[i] += 0.1 * g.normal();
      }
      return bf16 ? m.setWeightDtype("bfloat16") : m;
    };
    const gpu = make();
    gpu.to("cuda");
    return { cpu: make(), gpu };
  }

  for (const lc of LARGE_CASES) {
    itCuda(`xLSTM Large, ${lc.name}: the device session's steps follow xLSTMLarge.step within 1e-4, its state moves both ways`, () => {
      const { cpu, gpu } = largeTwins(lc.over, lc.bf16);
      const B = lc.B, V = TINY_LARGE.vocab_size, L = 10, tok = tokens(B, L, V, 31);
      const s = infer.createLargeInferenceSession(gpu, { batch: B });
      try {
        assert.equal(s.device, "cuda");
        // prompt of 4 through model.forward on the GPU (chunkwise) -> the session; the CPU model steps all of it
        const head = Int32Array.from({ length: B * 4 }, (_, i) => tok[Math.floor(i / 4) * L + (i % 4)]);
        const pre = noGrad(() => gpu.forward(new Tensor(head, [B, 4]), { returnLastState: true }));
        s.setState(pre.state!);
        let st: nn.LargeState | null = null;
        const want: Float32Array[] = [], got: Float32Array[] = [];
        noGrad(() => {
          for (let t = 0; t < L; ++t) {
            const r = cpu.step(new Tensor(column(tok, B, L, t), [B, 1]), st);
            st = r.state;
            if (t >= 4) want.push(r.logits.f32().slice());
          }
        });
        for (let t = 4; t < L; ++t) got.push(s.step(column(tok, B, L, t)));
        assertLogitsClose(got, want, "session steps vs xLSTMLarge.step");
        // the session's state continues on the GPU model's step
        const gs = s.getState();
        assert.equal(gs["0"].c.device, "cuda");
        const next = column(tok, B, L, 0);
        const a = noGrad(() => gpu.step(new Tensor(next, [B, 1]).cuda(), gs)).logits.cpu().f32();
        const b = noGrad(() => cpu.step(new Tensor(next, [B, 1]), st)).logits.f32();
        assertLogitsClose([a], [b], "session state -> model.step on the GPU");
        // prefill = steps; reset = the zero state
        s.reset();
        const p1 = s.prefill(head, 4);
        s.reset();
        let last: Float32Array = new Float32Array(0);
        for (let t = 0; t < 4; ++t) last = s.step(column(head, B, 4, t));
        assert.deepEqual(p1, last);
      } finally {
        s.dispose();
      }
    });
  }

  itCuda("xLSTM Large: the device session borrows the model's weight buffers (no copy); parameters freed meanwhile stay allocated for it until dispose", async () => {
    for (const bf16 of [false, true]) {
      const base = await settledDeviceBytes(), reportedBase = cuda.memoryStats().gcReportedBytes;
      const { gpu } = largeTwins({ embedding_dim: 64 }, bf16);  // "single" weights: projections of several parts
      const withModel = await settledDeviceBytes();
      const weights = withModel - base;
      const B = 2, tok = tokens(B, 1, TINY_LARGE.vocab_size, 17);
      const s = infer.createLargeInferenceSession(gpu, { batch: B });
      const own = cuda.memoryStats().allocatedBytes - withModel;
      assert.ok(own >= s.nativeBytes && own < s.nativeBytes + 64 * 512, `bf16 ${bf16}: the session allocated ${own} bytes, its own state and scratch are ${s.nativeBytes}`);
      assert.ok(s.nativeBytes < weights, `bf16 ${bf16}: nativeBytes ${s.nativeBytes} counts no weights (${weights} bytes)`);
      const first = s.step(tok);
      const reported = cuda.memoryStats().gcReportedBytes;
      assert.ok(reported >= reportedBase + weights / 2, `bf16 ${bf16}: the parameters are reported to the garbage collector (${reported - reportedBase} bytes)`);
      for (const p of gpu.parameters()) p.dispose();
      assert.equal(cuda.memoryStats().allocatedBytes, withModel + own, `bf16 ${bf16}: the freed parameters stay allocated while the session borrows them`);
      assert.equal(cuda.memoryStats().gcReportedBytes, reported, `bf16 ${bf16}: and stay reported to the garbage collector (a session dropped without dispose is weighed)`);
      s.reset();
      assert.deepEqual(s.step(tok), first, `bf16 ${bf16}: the session still reads them`);
      s.dispose();
      assert.equal(await settledDeviceBytes(), base, `bf16 ${bf16}: they go with the session`);
      assert.equal(cuda.memoryStats().gcReportedBytes, reportedBase, `bf16 ${bf16}: and so do their reports`);
      // disposed (with its weights freed) while a stepAsync is pending: memory and reports go when the step is done
      const { gpu: gpu2 } = largeTwins({ embedding_dim: 64 }, bf16);
      const s2 = infer.createLargeInferenceSession(gpu2, { batch: B });
      const pending = s2.stepAsync(tok);
      for (const p of gpu2.parameters()) p.dispose();
      s2.dispose();
      assert.deepEqual(await pending, first, `bf16 ${bf16}: the pending step ran on the weights it borrowed`);
      assert.equal(await settledDeviceBytes(), base, `bf16 ${bf16}: the pending step done, the weights are freed`);
      assert.equal(cuda.memoryStats().gcReportedBytes, reportedBase, `bf16 ${bf16}: and their reports withdrawn`);
    }
  });

  itCuda("xLSTM Large: decode steps from CUDA graphs equal the eager steps bit for bit (bfloat16 and float32 weights); memory back on dispose", async () => {
    const before = cuda.setSessionGraphs(false);
    try {
      for (const lc of [LARGE_CASES[1], LARGE_CASES[2]]) {
        const { gpu } = largeTwins(lc.over, lc.bf16);
        const B = lc.B, L = 9, tok = tokens(B, L, TINY_LARGE.vocab_size, 61);
        const bytes0 = await settledDeviceBytes();
        const eager = infer.createLargeInferenceSession(gpu, { batch: B }), graphed = infer.createLargeInferenceSession(gpu, { batch: B });
        try {
          const want: Float32Array[] = [], got: Float32Array[] = [];
          for (let t = 0; t < L; ++t) want.push(eager.step(column(tok, B, L, t)));
          cuda.setSessionGraphs(true);
          for (let t = 0; t < L; ++t) got.push(graphed.step(column(tok, B, L, t)));
          assert.equal(graphed.cudaGraphs, "on: 2 graphs", `${lc.name}: one graph per parity`);
          // a prefill's tokens are steps without the head, each from the graphs too (keyed with the head flag)
          graphed.reset();
          const head = Int32Array.from({ length: B * 5 }, (_, i) => tok[Math.floor(i / 5) * L + (i % 5)]);
          for (let r = 0; r < 3; ++r) got.push(graphed.prefill(head, 5));
          got.push(graphed.step(column(tok, B, L, 0)));
          assert.match(graphed.cudaGraphs, /^on: [3-6] graphs$/, `${lc.name}: graphs of steps with and without the head`);
          cuda.setSessionGraphs(false);
          eager.reset();
          for (let r = 0; r < 3; ++r) want.push(eager.prefill(head, 5));
          want.push(eager.step(column(tok, B, L, 0)));
          assert.deepEqual(got, want, `${lc.name}: steps from graphs vs eager steps`);
        } finally {
          eager.dispose();
          graphed.dispose();
        }
        assert.equal(await settledDeviceBytes(), bytes0, `${lc.name}: dispose frees the sessions and their graphs' scratch`);
        gpu.to("cpu");  // its device memory goes now, not while the next case counts
      }
    } finally {
      cuda.setSessionGraphs(before);
    }
  });

  itCuda("xLSTM Large: generate() and generateBatch() on a GPU model decode through the device session (the CPU model's tokens); memory flat; errors by name", async () => {
    const { cpu, gpu } = largeTwins({ weight_mode: "fused" }, true);
    const ids = async (m: nn.xLSTMLarge, fused: boolean) => {
      const out: number[] = [];
      for await (const t of generate(m as never, [1, 2, 3, 4, 5], { maxTokens: 8, temperature: 0, fused })) out.push(t.id);
      return out;
    };
    const want = await ids(cpu, true);
    const before = await settledDeviceBytes();
    assert.deepEqual(await ids(gpu, true), want, "device session");
    assert.equal(await settledDeviceBytes(), before, "generation gave its device memory back");
    assert.deepEqual(await ids(gpu, false), want, "Tensor path");
    // a batch of unequal prompts: the device session of 2 rows after the common prefix, as the CPU model's batch
    const batch = (m: nn.xLSTMLarge, fused: boolean) => generateBatch(m as never, [[1, 2, 3, 4, 5], [6, 7]], { maxTokens: 5, temperature: 0, fused });
    const wantBatch = (await batch(cpu, true)).ids;
    assert.deepEqual((await batch(gpu, true)).ids, wantBatch, "generateBatch on the GPU (device session)");
    assert.deepEqual((await batch(gpu, false)).ids, wantBatch, "generateBatch on the GPU (Tensor path)");
    assert.equal(await settledDeviceBytes(), before, "generateBatch gave its device memory back");
    const s = infer.createLargeInferenceSession(gpu, { batch: 2 });
    try {
      assert.throws(() => s.setState({ 5: null } as never), (e: Error) => e instanceof RangeError && /LargeInferenceSession.setState: state has key "5", but the model's blocks are 0..1/.test(e.message));
      assert.throws(() => s.setState({ 0: { c: Tensor.zeros([1, 2, 8, 16]), n: null, m: null } } as never), (e: Error) => e instanceof RangeError && /LargeInferenceSession.setState: 0.c has shape \[1, 2, 8, 16\], expected \[2, 2, 8, 16\]/.test(e.message));
      assert.throws(() => s.step(Int32Array.of(1)), (e: Error) => e instanceof RangeError && /LargeInferenceSession.step: tokens has 1 elements, expected B \(batch\) = 2/.test(e.message));
    } finally {
      s.dispose();
    }
    assert.throws(() => s.step(Int32Array.of(1, 2)), (e: Error) => e instanceof infer.InferenceSessionDisposedError && /LargeInferenceSession.step: the session is disposed/.test(e.message));
    assert.throws(() => infer.createLargeInferenceSession(cpu), (e: Error) => e instanceof TypeError && /createLargeInferenceSession: parameter embedding.weight is on cpu; the session runs on the GPU/.test(e.message));
  });
});
