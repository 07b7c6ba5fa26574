//! TODO(integrity): synth timing
