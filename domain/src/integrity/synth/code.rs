//! TODO(integrity): synth code
