// Registers every workload (imported for its side effects by the CLI), in the order `xlstm bench` runs them.
import "./gemm";
import "./xlstm-models";
import "./lm-train";
import "./slstm-layer";
import "./lstm-d2l";
import "./mlstm-cell";
import "./large-decode";
import "./gpu";
