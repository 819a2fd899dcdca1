// Registers every workload (imported for its side effects by the CLI).
import "./slstm-layer";
import "./lstm-d2l";
